"""ExampleResult -> a builder-neutral doctree: panels, comparison, failures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from docutils import nodes

from . import visual
from .claims import Verdict
from .model import Comparison, ExampleResult, Failure, LeafDiff, ModeRun, TensorView
from .nodes import evaldemo_output, evaldemo_panel, evaldemo_panels

SEGMENT_TITLES = {
    "train": "model.train()",
    "eval": "model.eval()",
    "mixed": "modules in both modes",
    "": "output",
}


def _para(*parts: str | nodes.Node, classes: Iterable[str] = ()) -> nodes.paragraph:
    para = nodes.paragraph(classes=list(classes))
    for part in parts:
        para += nodes.Text(part) if isinstance(part, str) else part
    return para


def _title(text: str) -> nodes.paragraph:
    return _para(nodes.strong("", "", nodes.literal(text, text)), classes=["evaldemo-title"])


def _block(text: str, *classes: str, language: str = "text") -> nodes.literal_block:
    kind = evaldemo_output if language == "text" else nodes.literal_block
    block = kind(text, text, classes=list(classes))
    block["language"] = language
    return block


def _yes(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "no")


def _number(value: float) -> str:
    return f"{value:.4g}"


def output_nodes(result: ExampleResult, verdicts: Sequence[Verdict] = ()) -> list[nodes.Node]:
    """Everything the run produced, in reading order; the code is the directive's."""
    out: list[nodes.Node] = []
    if "device" in result.extra:  # only examples that asked for a :device: say where they ran
        out.append(_para(f"Ran on device: {result.extra['device']}", classes=["evaldemo-device"]))
    if result.setup_output:
        out += [_para("Printed by the setup:", classes=["evaldemo-label"]),
                _block(result.setup_output, "evaldemo-setup")]
    if result.segments:
        out.append(_segments(result))
    if result.runs:
        out += _panels(result.runs)
    if result.runs and result.failure is None:
        out.append(_facts(result, verdicts))
    return out


def _segments(result: ExampleResult) -> nodes.container:
    box = nodes.container(classes=["evaldemo-segments"])
    for segment in result.segments:
        title = SEGMENT_TITLES.get(segment.mode, segment.mode)
        part = evaldemo_panel(classes=["evaldemo-segment", f"evaldemo-{segment.mode or 'none'}"])
        part["label"] = f"printed while in {title}"
        part += _title(title)
        part += _block(segment.text, "evaldemo-output")
        box += part
    return box


def _panels(runs: Sequence[ModeRun]) -> list[nodes.Node]:
    views = {run.mode: {view.path: view for view in run.tensors} for run in runs}
    panels = evaldemo_panels(classes=["evaldemo-panels"])
    for run in runs:
        title = f"model.{run.mode}()"
        panel = evaldemo_panel(classes=[f"evaldemo-{run.mode}"])
        panel["label"] = f"{title} output"
        panel += _title(title)
        for number, text in enumerate(run.outputs, start=1):
            if len(run.outputs) > 1:
                panel += _para(f"pass {number}", classes=["evaldemo-label"])
            panel += _block(text, "evaldemo-output")
        other_mode = next((r.mode for r in runs if r.mode != run.mode), None)
        for view in run.tensors:
            other = views[other_mode].get(view.path) if other_mode else None
            grid = visual.element_grid(view, other, run.mode, other_mode) if other and other_mode else None
            if grid is not None:
                panel += nodes.raw("", grid, format="html")
            if view.numel > visual.MAX_GRID:
                panel += _para(_leaf_label(view, run) + visual.summary(view), classes=["evaldemo-summary"])
        if run.printed:
            panel += _para("printed during the passes:", classes=["evaldemo-label"])
            panel += _block(run.printed, "evaldemo-printed")
        panels += panel
    out: list[nodes.Node] = [panels]
    if "train" in views and "eval" in views:
        for path, train in views["train"].items():
            drawn = visual.chart(train, views["eval"][path]) if path in views["eval"] else None
            if drawn is not None:
                svg, text = drawn
                box = nodes.container(classes=["evaldemo-chart-box"])
                box += nodes.raw("", svg, format="html")
                box += _para(text if path == "output" else f"{path}: {text}", classes=["evaldemo-chart-text"])
                out.append(box)
    return out


def _leaf_label(view: TensorView, run: ModeRun) -> str:
    return "" if len(run.tensors) == 1 else f"{view.path}: "


def _facts(result: ExampleResult, verdicts: Sequence[Verdict]) -> nodes.container:
    box = nodes.container(classes=["evaldemo-comparison"])
    box += _para(nodes.strong("", "What the run shows"), classes=["evaldemo-title"])
    items = nodes.bullet_list()
    items += _item(_mode_dependent(result.mode_dependent))
    if result.comparison is not None:
        items += _item(_differences(result.comparison))
    by_mode = {run.mode: run for run in result.runs}
    items += _item(
        [_para("Deterministic for this input (checked with a second pass): "
               + ", ".join(f"{m} {_yes(r.deterministic)}" for m, r in by_mode.items()))]
    )
    items += _item(
        [_para("Output tracks gradients (requires_grad): "
               + ", ".join(f"{m} {_yes(r.requires_grad)}" for m, r in by_mode.items()))]
    )
    items += _item(
        [_para("Buffers changed by the pass: "
               + "; ".join(f"{m}: {', '.join(r.buffers_changed) or 'none'}" for m, r in by_mode.items()))]
    )
    if verdicts:
        items += _item([_claims(verdicts)])
    box += items
    comparison = result.comparison
    if result.extra.get("device") == "cuda" and not all(r.deterministic for r in result.runs):
        box += _para(
            "Note: on a GPU, some kernels (atomic adds in reductions and backward passes) are "
            "not deterministic, so two passes can differ in the last bits without any randomness "
            "in the model; set torch.use_deterministic_algorithms(True) to rule them out.",
            classes=["evaldemo-note"],
        )
    if comparison is not None and result.mode_dependent and not comparison.differ:
        box += _para(
            "Note: the model has mode-dependent submodules, yet both modes gave the same "
            "output for this input, so the example may not show what it means to.",
            classes=["evaldemo-note"],
        )
    return box


def _claims(verdicts: Sequence[Verdict]) -> nodes.paragraph:
    para = _para("Claims checked by the build: ")
    for index, verdict in enumerate(verdicts):
        if index:
            para += nodes.Text("; ")
        para += nodes.literal(verdict.claim, verdict.claim)
        state = "holds" if verdict.held else "does NOT hold"
        para += nodes.inline(
            "", f" {state}", classes=["evaldemo-held" if verdict.held else "evaldemo-broken"]
        )
        if not verdict.held:
            para += nodes.Text(f" ({verdict.fact})")
    return para


def _item(children: list[nodes.Node]) -> nodes.list_item:
    item = nodes.list_item()
    item += children
    return item


def _mode_dependent(found: tuple[str, ...]) -> list[nodes.Node]:
    if not found:
        return [_para("Mode-dependent submodules: none found")]
    para = _para("Mode-dependent submodules: ")
    for index, entry in enumerate(found):
        if index:
            para += nodes.Text(", ")
        para += nodes.literal(entry, entry)
    return [para]


def _leaf_text(leaf: LeafDiff) -> str:
    if leaf.equal:
        return "equal"
    if leaf.note:
        return leaf.note
    if leaf.max_abs_diff is None or not leaf.total:
        return "differ"
    share = 100 * (leaf.differing or 0) / leaf.total
    return (
        f"differ: largest absolute difference {_number(leaf.max_abs_diff)}, "
        f"{leaf.differing} of {leaf.total} elements ({share:.1f}%)"
    )


def _differences(comparison: Comparison) -> list[nodes.Node]:
    a, b = comparison.modes
    if len(comparison.leaves) == 1:
        return [_para(f"Outputs ({a} vs {b}): {_leaf_text(comparison.leaves[0])}")]
    listing = nodes.bullet_list()
    for leaf in comparison.leaves:
        listing += _item([_para(nodes.literal(leaf.path, leaf.path), f": {_leaf_text(leaf)}")])
    verdict = "differ" if comparison.differ else "are equal"
    return [_para(f"Outputs ({a} vs {b}) {verdict}, leaf by leaf:"), listing]


def failure_nodes(failure: Failure, expected: bool) -> nodes.container:
    box = nodes.container(classes=["evaldemo-failure", "evaldemo-expected" if expected else "evaldemo-error"])
    lead = "Raised, as the example expects:" if expected else "This example did not run to the end:"
    box += _para(nodes.strong("", lead), " ", failure.message)
    if failure.traceback:
        # faulthandler's report is not a Python traceback (and can stall its lexer)
        language = "text" if failure.kind in ("crash", "worker") else "pytb"
        box += _block(failure.traceback, "evaldemo-traceback", language=language)
    return box


def problem_nodes(message: str) -> nodes.container:
    """Shown in place of the output when the directive's options are wrong."""
    box = nodes.container(classes=["evaldemo-failure", "evaldemo-error"])
    box += _para(nodes.strong("", "This example was not run:"), " ", message)
    return box

"""ExampleResult -> a builder-neutral doctree: panels, comparison, failures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from docutils import nodes

from . import summary, visual
from .claims import Verdict
from .model import (
    Comparison,
    ExampleRequest,
    ExampleResult,
    Failure,
    ModeRun,
    TensorView,
)
from .nodes import (
    evaldemo_chart,
    evaldemo_code,
    evaldemo_fold,
    evaldemo_grid,
    evaldemo_output,
    evaldemo_panel,
    evaldemo_panels,
)

#: As-written segments: the mode the script's models were in when it printed.
SEGMENT_TITLES = {
    "train": "train mode",
    "eval": "eval mode",
    "mixed": "modules in both modes",
    "": "output",
}
DEFAULT_MODE = "train mode (the default)"  # a module is in train mode until told otherwise


def _para(*parts: str | nodes.Node, classes: Iterable[str] = ()) -> nodes.paragraph:
    para = nodes.paragraph(classes=list(classes))
    for part in parts:
        para += nodes.Text(part) if isinstance(part, str) else part
    return para


def _title(text: str) -> nodes.paragraph:
    return _para(nodes.strong("", "", nodes.literal(text, text)), classes=["evaldemo-title"])


def _block(text: str, *classes: str, language: str = "text") -> nodes.literal_block:
    kind = evaldemo_output if language == "text" else evaldemo_code
    block = kind(text, text, classes=list(classes))
    block["language"] = language
    return block


def _yes(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "no")


def _number(value: float) -> str:
    return f"{value:.4g}"


def input_nodes(request: ExampleRequest) -> list[nodes.Node]:
    """``input = <:input:>  # seed N, ...``: the line a reader copies to reproduce the run."""
    if request.input is None:
        return []
    notes = [f"seed {request.seed}"]
    if request.no_grad:
        notes.append("eval pass under torch.no_grad()")
    if request.repeat > 1:
        notes.append(f"{request.repeat} passes per mode")
    return [_block(f"input = {request.input}  # {', '.join(notes)}", "evaldemo-input", language="python")]


def output_nodes(result: ExampleResult, verdicts: Sequence[Verdict] = (), *,
                 html: bool = False) -> list[nodes.Node]:
    """Everything the run produced, in reading order; the code is the directive's.

    ``html``: the page is written by Sphinx's HTML writer, which writes some parts
    from their data (see :func:`summary.table`).
    """
    out: list[nodes.Node] = []
    if "device" in result.extra:  # only examples that asked for a :device: say where they ran
        out.append(_para(f"Ran on device: {result.extra['device']}", classes=["evaldemo-device"]))
    if result.setup_output:
        out += [_para("Printed by the setup:", classes=["evaldemo-label"]),
                _block(result.setup_output, "evaldemo-setup")]
    if result.segments:
        out.append(_segments(result))
    if result.runs:
        marks = _marks(result.comparison)
        out.append(_panels(result.runs, marks))
        if verdicts:
            out.append(claims_nodes(verdicts))
        out += _charts(result.runs, marks)
    if result.runs and result.failure is None:
        out.append(summary.facts(result, html=html))
    return out


def segment_titles(modes: Sequence[str]) -> list[str]:
    """Each segment's title; train mode before any switch is the default one."""
    titles, switched = [], False
    for mode in modes:
        switched = switched or mode in ("eval", "mixed")
        titles.append(DEFAULT_MODE if mode == "train" and not switched
                      else SEGMENT_TITLES.get(mode, mode))
    return titles


def _segments(result: ExampleResult) -> nodes.container:
    box = nodes.container(classes=["evaldemo-segments"])
    titles = segment_titles([segment.mode for segment in result.segments])
    for segment, title in zip(result.segments, titles, strict=True):
        part = evaldemo_panel(classes=["evaldemo-segment", f"evaldemo-{segment.mode or 'none'}"])
        part["label"] = f"printed while in {title}"
        part += _title(title)
        part += _block(segment.text, "evaldemo-output")
        box += part
    return box


def _marks(comparison: Comparison | None) -> dict[str, tuple[int, ...]]:
    """The elements the comparison found different, per leaf path: what the marks show."""
    if comparison is None:
        return {}
    return {leaf.path: leaf.differs_at for leaf in comparison.leaves if leaf.differs_at is not None}


def _panels(runs: Sequence[ModeRun], marks: dict[str, tuple[int, ...]]) -> evaldemo_panels:
    """One panel per mode; a small tensor shows as a marked grid, its printout folded."""
    views = {run.mode: {view.path: view for view in run.tensors} for run in runs}
    panels = evaldemo_panels(classes=["evaldemo-panels"])
    for run in runs:
        title = f"model.{run.mode}()"
        panel = evaldemo_panel(classes=[f"evaldemo-{run.mode}"])
        panel["label"] = f"{title} output"
        panel += _title(title)
        other_mode = next((r.mode for r in runs if r.mode != run.mode), None)
        grids = []
        for view in run.tensors:
            other = views[other_mode].get(view.path) if other_mode else None
            grid = (visual.element_grid(view, other, run.mode, other_mode, marks.get(view.path))
                    if other and other_mode else None)
            if grid is not None:
                node = evaldemo_grid(classes=["evaldemo-grid-node"])
                node["grid"] = grid
                grids.append(node)
        # one form per value: a lone tensor drawn as a grid keeps its printout folded
        fold = len(grids) == 1 and [v.path for v in run.tensors] == ["output"]
        for number, text in enumerate(run.outputs, start=1):
            if len(run.outputs) > 1:
                panel += _para(f"pass {number}", classes=["evaldemo-label"])
            printout = _block(text, "evaldemo-output")
            if number == 1 and fold:
                panel += grids
                folded = evaldemo_fold(classes=["evaldemo-printout"])
                folded["summary"] = "printed output"
                folded += printout
                panel += folded
            else:
                panel += printout
        if not fold:
            panel += grids
        for view in run.tensors:
            if view.numel > visual.MAX_GRID:
                panel += _para(_leaf_label(view, run) + visual.summary(view), classes=["evaldemo-summary"])
        if run.printed:
            panel += _para("printed during the passes:", classes=["evaldemo-label"])
            panel += _block(run.printed, "evaldemo-printed")
        panel["need"] = _need(run, grids, fold)
        panels += panel
    return panels


def _need(run: ModeRun, grids: Sequence[evaldemo_grid], fold: bool) -> float:
    """The width (em) the panel's widest visible block asks for: both panels sit side by
    side only when both needs fit the column (an estimate from monospace character counts)."""
    texts = [*run.outputs[1:]] if fold else [*run.outputs]
    texts.append(run.printed)
    longest = max((len(line) for text in texts for line in text.splitlines()), default=0)
    need = longest * 0.55 + 2.4
    for node in grids:
        grid: visual.Grid = node["grid"]
        need = max(need, grid.columns * (grid.width + 1.4) * 0.5 + 2.4)
    return round(max(need, 12.0), 1)


def _charts(runs: Sequence[ModeRun], marks: dict[str, tuple[int, ...]]) -> list[nodes.Node]:
    views = {run.mode: {view.path: view for view in run.tensors} for run in runs}
    out: list[nodes.Node] = []
    if "train" in views and "eval" in views:
        for path, train in views["train"].items():
            drawn = (visual.chart(train, views["eval"][path], marks.get(path))
                     if path in views["eval"] else None)
            if drawn is not None:
                box = evaldemo_chart(classes=["evaldemo-chart-node"])
                box["chart"] = drawn
                text = drawn.text
                box += _para(text if path == "output" else f"{path}: {text}", classes=["evaldemo-chart-text"])
                out.append(box)
    return out


def _leaf_label(view: TensorView, run: ModeRun) -> str:
    return "" if len(run.tensors) == 1 else f"{view.path}: "


def claims_nodes(verdicts: Sequence[Verdict]) -> nodes.container:
    """The claims as pass/fail badges: the words say it, the icon (HTML only) and colour add to it."""
    broken = any(not verdict.held for verdict in verdicts)
    box = nodes.container(classes=["evaldemo-claims"] + (["evaldemo-claims-broken"] if broken else []))
    para = _para("Claims checked by the build: ", classes=["evaldemo-claims-line"])
    for index, verdict in enumerate(verdicts):
        if index:  # words between badges for text and screen readers; HTML spaces them itself
            para += nodes.inline("", "; ", classes=["evaldemo-sep"])
        badge = nodes.inline(
            "", "", classes=["evaldemo-claim", "evaldemo-held" if verdict.held else "evaldemo-broken"]
        )
        badge += nodes.literal(verdict.claim, verdict.claim)
        badge += nodes.Text(" holds" if verdict.held else " does NOT hold")
        if not verdict.held:
            badge += nodes.Text(f" ({verdict.fact})")
        para += badge
    box += para
    return box


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

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
    """A panel's title: plain words in every builder (HTML sets it as code by its class)."""
    return _para(text, classes=["evaldemo-title"])


def _block(text: str, *classes: str, language: str = "text") -> nodes.literal_block:
    kind = evaldemo_output if language == "text" else evaldemo_code
    block = kind(text, text, classes=list(classes))
    block["language"] = language
    return block


def _yes(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "no")


def _number(value: float) -> str:
    return f"{value:.4g}"


#: The input line's characters, its notes included, before the notes go on a line above it.
INPUT_WIDTH = 77


def input_nodes(request: ExampleRequest) -> list[nodes.Node]:
    """``input = <:input:>  # seed N, ...``: the line a reader copies to reproduce the run."""
    if request.input is None:
        return []
    notes = [f"seed {request.seed}"]
    if request.no_grad:
        notes.append("eval pass under torch.no_grad()")
    if request.repeat > 1:
        notes.append(f"{request.repeat} passes per mode")
    line = f"input = {request.input}  # {', '.join(notes)}"
    if len(line) > INPUT_WIDTH:  # the notes go above it, so the line fits 80 columns in text
        line = f"# {', '.join(notes)}\ninput = {request.input}"
    return [_block(line, "evaldemo-input", language="python")]


def output_nodes(result: ExampleResult, verdicts: Sequence[Verdict] = (), *,
                 request: ExampleRequest | None = None,
                 details: summary.Details = "compact") -> list[nodes.Node]:
    """Everything the run produced, in reading order; the code is the directive's.

    One builder-neutral tree for every builder: the sentence, the panels, then what
    :func:`summary.facts` keeps for ``details`` (the chart with ``full`` only).
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
        if result.failure is None:
            out += summary.lead(result)
        marks = _marks(result.comparison)
        out.append(_panels(result.runs, marks, str(result.extra.get("model") or "model")))
        if verdicts:  # right under the panels: what the page claims, and whether it held
            out.append(claims_nodes(verdicts))
        if details == "full":
            out += _charts(result.runs, marks)
        facts = summary.facts(result, details, request) if result.failure is None else None
        if facts is not None:
            out.append(facts)
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


def _panels(runs: Sequence[ModeRun], marks: dict[str, tuple[int, ...]],
            name: str = "model") -> evaldemo_panels:
    """One panel per mode, titled as the code calls the model (``net.train()``); a small
    tensor shows as a marked grid, its printout folded."""
    views = {run.mode: {view.path: view for view in run.tensors} for run in runs}
    panels = evaldemo_panels(classes=["evaldemo-panels"])
    for run in runs:
        title = f"{name}.{run.mode}()"
        panel = evaldemo_panel(classes=[f"evaldemo-{run.mode}"])
        panel["label"] = f"{title} output"
        panel += _title(title)
        other_mode = next((r.mode for r in runs if r.mode != run.mode), None)
        grids = []
        for view in run.tensors:
            other = views[other_mode].get(view.path) if other_mode else None
            grid = (visual.element_grid(view, other, run.mode, other_mode, marks.get(view.path), name)
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


#: A panel's own room around its content (padding 0.6em each side, 1 px borders), and a
#: printout's (the code padding of 0.7em each side), in the panel's em.
PANEL_EM = 1.33
PRE_EM = 1.4


def _need(run: ModeRun, grids: Sequence[evaldemo_grid], fold: bool) -> float:
    """The width (em) the panel's widest visible block asks for: both panels sit side by
    side only when both needs fit the column. Grids and printouts are monospace at a size
    the stylesheet fixes (``visual.GRID_FONT`` of the panel's), so the count of characters
    gives the width in every theme."""
    texts = [*run.outputs[1:]] if fold else [*run.outputs]
    texts.append(run.printed)
    longest = max((len(line) for text in texts for line in text.splitlines()), default=0)
    need = longest * visual.CH * visual.GRID_FONT + PRE_EM if longest else 0.0
    for node in grids:
        grid: visual.Grid = node["grid"]
        need = max(need, grid.em)
    return round(max(need + PANEL_EM, 12.0), 2)


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
                text = drawn.words
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

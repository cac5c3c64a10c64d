"""The comparison and the trace as builder-neutral nodes: "What the run shows", where the modes part.

Plain-language items (the outputs, where the modes part, the modules that read the
mode, repeatability, gradients, buffers), the run's notes, then the per-layer table:
folded in a ``<details>`` in HTML, a plain table with its title in every other builder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from docutils import nodes

from .model import Comparison, ExampleResult, LayerDiff, LeafDiff, ModeModule, ModeRun, Trace
from .nodes import evaldemo_facts, evaldemo_module, evaldemo_trace, evaldemo_trace_title

#: A GPU pass that was not repeatable need not be random: say why, and how to rule it out.
GPU_NOTE = (
    "Note: on a GPU, some kernels (atomic adds in reductions and backward passes) are not "
    "deterministic, so two passes can differ in the last bits without any randomness in "
    "the model; set torch.use_deterministic_algorithms(True) to rule them out."
)
#: Shown when a model reads the mode and yet both modes gave the same output.
SAME_OUTPUT_NOTE = (
    "Note: the model has mode-dependent submodules, yet both modes gave the same "
    "output for this input, so the example may not show what it means to."
)


def _para(*parts: str | nodes.Node, classes: Iterable[str] = ()) -> nodes.paragraph:
    para = nodes.paragraph(classes=list(classes))
    for part in parts:
        para += nodes.Text(part) if isinstance(part, str) else part
    return para


def _item(*children: nodes.Node) -> nodes.list_item:
    item = nodes.list_item()
    item += list(children)
    return item


def _number(value: float) -> str:
    return f"{value:.4g}"


def _yes(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "no")


def _path(name: str, full: str = "") -> evaldemo_module:
    node = evaldemo_module(name, name)
    if full:
        node["full"] = full
    return node


class Name(NamedTuple):
    """A module's access path in a sentence; ``full`` is its ``repr`` (shown on hover)."""

    name: str
    full: str = ""


#: A sentence of the facts: its texts and the module names in it.
Parts = list[str | Name]


def _para_of(parts: Parts, classes: Iterable[str] = ()) -> nodes.paragraph:
    """The docutils paragraph of a sentence (for every builder but HTML)."""
    return _para(*(part if isinstance(part, str) else _path(part.name, part.full) for part in parts),
                 classes=classes)


def _named(name: str, label: str, full: str = "") -> Parts:
    """`` `net[2]` (Dropout, p=0.5) ``"""
    return [Name(name, full), f" ({label})" if label else ""]


def _with_names(text: str) -> Parts:
    """Text from the worker, its `` `names` `` as names."""
    return [Name(piece) if index % 2 else piece
            for index, piece in enumerate(re.split(r"`([^`]+)`", text)) if piece]


def _values(differing: int | None, total: int | None, largest: float | None) -> str:
    """``8 of 12 values differ (largest difference 1.09)``."""
    if not differing:
        return "equal"
    word = "value differs" if differing == 1 else "values differ"
    size = f" (largest difference {_number(largest)})" if largest is not None else ""
    return f"{differing} of {total} {word}{size}"


def _leaf_text(leaf: LeafDiff) -> str:
    if leaf.equal and leaf.verdict == "rounding":
        size = f" (largest difference {_number(leaf.max_abs_diff)})" if leaf.max_abs_diff else ""
        return f"equal up to rounding{size}"
    if leaf.equal:
        return "equal"
    if leaf.note:
        return leaf.note
    if leaf.max_abs_diff is None or not leaf.total:
        return "differ"
    return _values(leaf.differing, leaf.total, leaf.max_abs_diff)


def _outputs(comparison: Comparison) -> Parts:
    """One output: one sentence (several: see :func:`_leaves`)."""
    a, b = comparison.modes
    return [f"Outputs ({a} vs {b}): {_leaf_text(comparison.leaves[0])}"]


def _leaves(comparison: Comparison) -> list[nodes.Node]:
    """Several outputs (a tuple, a dict): a sentence, then a list of them, leaf by leaf."""
    a, b = comparison.modes
    listing = nodes.bullet_list()
    for leaf in comparison.leaves:
        listing += _item(_para(nodes.literal(leaf.path, leaf.path), f": {_leaf_text(leaf)}"))
    if comparison.more:
        some = f", {comparison.more_differing} of them differ" if comparison.more_differing else ""
        listing += _item(_para(f"… and {comparison.more} more leaves{some}"))
    verdict = VERDICTS[comparison.verdict]
    return [_para(f"Outputs ({a} vs {b}) {verdict}, leaf by leaf:"), listing]


#: The outputs' verdict in a sentence.
VERDICTS = {"differ": "differ", "equal": "are equal", "rounding": "are equal up to rounding",
            "incomparable": "cannot all be compared"}


def _calls(count: int) -> str:
    return "1 module call" if count == 1 else f"{count} module calls"


def _label(row: LayerDiff) -> str:
    return f"{row.type}, {row.settings}" if row.settings else row.type


def _parting(trace: Trace, outputs_differ: bool, fulls: dict[str, str]) -> Parts:
    rows = {row.name: row for row in trace.layers}
    if not trace.parting:
        if trace.differing_calls or outputs_differ:
            return ["The modes part outside the traced modules: no module's output differs "
                    "while its inputs were equal."]
        every = "the one traced module call" if trace.calls == 1 else f"all {_calls(trace.calls)} traced"
        return [f"The modes do not part: {every} gave the same output in both modes."]
    parts: Parts = ["The modes part at "]
    for index, name in enumerate(trace.parting[:5]):
        if index:
            parts.append(" and " if index == len(trace.parting[:5]) - 1 else ", ")
        row = rows.get(name)
        parts += _named(name, _label(row) if row else "", fulls.get(name, ""))
    if len(trace.parting) > 5:
        parts.append(f" (and {len(trace.parting) - 5} more)")
    if trace.differing_calls > len(trace.parting):
        it = "it" if len(trace.parting) == 1 else "them"
        parts.append(f"; the layers after {it} inherit the difference")
    return parts


def _modules(found: Sequence[ModeModule]) -> Parts:
    if not found:
        return ["Mode-dependent modules: none found"]
    parts: Parts = ["Mode-dependent modules: "]
    for index, module in enumerate(found):
        if index:
            parts.append("; " if found[index - 1].no_effect else ", ")
        parts += _named(module.name, module.label, module.full)
        if module.no_effect:
            parts.append(f": {module.no_effect}")
    return parts


def _repeatability(runs: Sequence[ModeRun]) -> Parts:
    parts: Parts = ["Repeatability: "]
    for index, run in enumerate(runs):
        if index:
            parts.append("; ")
        if run.deterministic is None:
            parts.append(f"{run.mode}: not checked")
        elif run.deterministic:
            parts.append(f"{run.mode}: a second pass gave the same values")
        else:
            parts.append(f"{run.mode}: a second pass gave different values")
            if run.varied:
                parts += [", first at ", Name(run.varied[0])]
    return parts


def _buffers(runs: Sequence[ModeRun]) -> Parts:
    parts: Parts = ["Buffers changed by the pass: "]
    for index, run in enumerate(runs):
        parts.append(("; " if index else "") + f"{run.mode}: ")
        for number, name in enumerate(run.buffers_changed):
            parts += [", " if number else "", Name(name)]
        if not run.buffers_changed:
            parts.append("none")
    return parts


def facts(result: ExampleResult, claims: nodes.Node | None = None, *, html: bool = False) -> nodes.container:
    """"What the run shows": the items, the notes, then the folded per-layer table.

    With ``html`` the sentences are kept as data and written by their visitor, and so is
    the table (see :func:`table`); a list of several outputs, or claims, take the
    docutils form, which every builder writes.
    """
    comparison, trace = result.comparison, result.trace
    several = comparison is not None and (len(comparison.leaves) != 1 or comparison.more > 0)
    items: list[Parts] = []
    if comparison is not None and not several:
        items.append(_outputs(comparison))
    if trace is not None:
        fulls = {module.name: module.full for module in result.mode_dependent}
        items.append(_parting(trace, comparison is not None and comparison.differ, fulls))
    items.append(_modules(result.mode_dependent))
    items.append(_repeatability(result.runs))
    items.append(["Output tracks gradients (requires_grad): "
                  + ", ".join(f"{r.mode} {_yes(r.requires_grad)}" for r in result.runs)])
    items.append(_buffers(result.runs))
    notes: list[Parts] = []
    if result.extra.get("device") == "cuda" and not all(r.deterministic for r in result.runs):
        notes.append([GPU_NOTE])
    if comparison is not None and result.mode_dependent and comparison.verdict in ("equal", "rounding"):
        notes.append([SAME_OUTPUT_NOTE])
    notes += [["Note: ", *_with_names(note)] for note in result.notes]
    if html and not several and claims is None:
        box: nodes.container = evaldemo_facts(classes=["evaldemo-comparison"])
        box["items"], box["notes"] = items, notes
    else:
        box = nodes.container(classes=["evaldemo-comparison"])
        box += _para(nodes.strong("", "What the run shows"), classes=["evaldemo-title"])
        listing = nodes.bullet_list()
        if comparison is not None and several:
            listing += _item(*_leaves(comparison))
        listing += [_item(_para_of(item)) for item in items]
        if claims is not None:
            listing += _item(claims)
        box += listing
        box += [_para_of(note, classes=["evaldemo-note"]) for note in notes]
    if trace is not None and trace.layers:
        box += table(trace, html=html)
    return box


def _cell(*parts: str | nodes.Node) -> nodes.entry:
    entry = nodes.entry()
    entry += _para(*parts)
    return entry


def _row(*cells: nodes.entry) -> nodes.row:
    row = nodes.row()
    row += list(cells)
    return row


def _figures(row: LayerDiff) -> tuple[str, str]:
    if row.total is None:
        return ("n/a", "not comparable" if row.verdict == "incomparable"
                else ("equal" if row.equal else "differ"))
    largest = _number(row.max_abs_diff or 0.0)
    share = 100 * (row.differing or 0) / row.total if row.total else 0.0
    return (largest, f"{row.differing} of {row.total} ({share:.0f}%)")


def _remark(row: LayerDiff) -> str:
    if row.parts:
        return "the modes part here"
    if row.note:
        return row.note
    if row.equal and row.verdict == "rounding":
        return "equal up to rounding"
    return "" if row.inputs_equal else "inputs already differ"


class TraceRow(NamedTuple):
    """One row of the per-layer table: ``name`` (a module path, shown as code) or a text."""

    cells: tuple[str, ...]
    name: bool = False
    parts: bool = False


def trace_rows(trace: Trace) -> tuple[str, tuple[str, ...], list[TraceRow]]:
    """The table's title, headers and rows: calls in call order, capped; left-out calls
    are counted in a row of their own."""
    a, b = trace.modes
    title = (f"Layer by layer: {_calls(trace.calls)}, {trace.differing_calls} with different "
             f"outputs in {a} and {b}")
    headers = ("layer", "module", f"largest |{a} - {b}|", "values that differ", "note")
    rows: list[TraceRow] = []
    if trace.before:
        rows.append(TraceRow((f"… {trace.before} earlier calls", "", "", "", "")))
    for layer in trace.layers:
        largest, share = _figures(layer)
        rows.append(TraceRow((layer.name, _label(layer), largest, share, _remark(layer)),
                             name=True, parts=layer.parts))
    if trace.after:
        size = ("" if trace.largest_after is None
                else f", largest difference {_number(trace.largest_after)}")
        rows.append(TraceRow((f"… {trace.after} more calls", "", "",
                              f"{trace.differing_after} of them differ{size}", "")))
    return title, headers, rows


def table(trace: Trace, *, html: bool = False) -> evaldemo_trace:
    """The per-layer table, folded under its title.

    With ``html`` the node holds the rows as data and its visitor writes the table
    (a docutils table costs about 200 nodes an example to build and to walk); every
    other builder gets a docutils table with its title paragraph.
    """
    title, headers, rows = trace_rows(trace)
    box = evaldemo_trace(classes=["evaldemo-trace-box"])
    box["title"] = title
    if html:
        box["headers"], box["rows"] = headers, rows
        return box
    table_node = nodes.table(classes=["evaldemo-trace-table"])
    group = nodes.tgroup(cols=len(headers))
    table_node += group
    group += [nodes.colspec(colwidth=width) for width in (22, 22, 14, 16, 26)]
    head = nodes.thead()
    head += _row(*(_cell(text) for text in headers))
    group += head
    body = nodes.tbody()
    for data in rows:
        first = _path(data.cells[0]) if data.name else data.cells[0]
        row = _row(_cell(first), *(_cell(text) for text in data.cells[1:]))
        if data.parts:
            row["classes"].append("evaldemo-parts")
        body += row
    group += body
    box += evaldemo_trace_title(title, title, classes=["evaldemo-label"])
    box += table_node
    return box

"""The per-layer table: each traced layer call, how much its output differs between modes.

A plain docutils table that every builder writes; its columns fit 80 characters in text
(:data:`WIDTHS`). Also the small pieces the sentences share: numbers, module names.
"""

from __future__ import annotations

from collections.abc import Iterable

from docutils import nodes

from .model import LayerDiff, Trace
from .nodes import evaldemo_module

Part = str | nodes.Node
Details = str  # "compact" or "full"
DETAILS = ("compact", "full")


def _para(*parts: Part, classes: Iterable[str] = ()) -> nodes.paragraph:
    para = nodes.paragraph(classes=list(classes))
    for part in parts:
        para += nodes.Text(part) if isinstance(part, str) else part
    return para


def number(value: float) -> str:
    """Four significant digits, and never ``-0``."""
    text = f"{value:.4g}"
    return "0" if text in ("-0", "0", "-0.0") else text


def _path(name: str, full: str = "") -> evaldemo_module:
    node = evaldemo_module(name, name)
    if full:
        node["full"] = full
    return node


def _calls(count: int) -> str:
    return "1 layer call" if count == 1 else f"{count} layer calls"


def _label(row: LayerDiff) -> str:
    return f"{row.type}, {row.settings}" if row.settings else row.type


def _share(row: LayerDiff) -> str:
    if row.total is None:
        return "not comparable" if row.verdict == "incomparable" else ("equal" if row.equal else "differ")
    if not row.differing:
        return "none"
    share = 100 * row.differing / row.total if row.total else 0.0
    return f"{row.differing} of {row.total} ({share:.0f}%)"


def _remark(row: LayerDiff) -> str:
    if row.parts:
        return "first differs here"
    if row.note:
        return row.note
    if row.equal and row.verdict == "rounding":
        return "equal up to rounding"
    return "" if row.inputs_equal else "inputs differ"


#: Characters per column in text (within 80 with the borders); LaTeX takes them as ratios.
WIDTHS = {"compact": (22, 22, 26), "full": (11, 14, 9, 15, 15)}


Row = tuple[tuple[str, ...], bool, bool]


def trace_rows(trace: Trace, details: Details = "compact") -> tuple[str, tuple[str, ...], list[Row]]:
    """The table's title, headers and rows ``(cells, first cell is a module path, parts here)``."""
    a, b = trace.modes
    full = details == "full"
    title = (f"Layer by layer: {_calls(trace.calls)}, {trace.differing_calls} with different outputs in {a} and {b}"
             if full else f"Layer by layer: {trace.differing_calls} of {_calls(trace.calls)} differ")
    # compact: where they first differ is the sentence's (and the row is bold in HTML)
    headers = (("layer", "module", f"largest |{a} - {b}|", "values that differ", "note") if full
               else ("layer", "module", "values that differ"))
    rows: list[Row] = []
    blank = ("",) * (len(headers) - 1)
    if trace.before:
        rows.append(((f"… {trace.before} earlier calls", *blank), False, False))
    for layer in trace.layers:
        largest = "n/a" if layer.total is None else number(layer.max_abs_diff or 0.0)
        cells = ((layer.name, _label(layer), largest, _share(layer), _remark(layer)) if full
                 else (layer.name, layer.type, _share(layer)))
        rows.append((cells, True, layer.parts))
    if trace.after:
        size = "" if trace.largest_after is None else f", largest difference {number(trace.largest_after)}"
        rest = f"{trace.differing_after} of them differ{size}"
        rows.append(((f"… {trace.after} more calls", "", *(("",) if full else ()), rest,
                      *(("",) if full else ())), False, False))
    return title, headers, rows


def _cell(*parts: Part) -> nodes.entry:
    entry = nodes.entry()
    entry += _para(*parts)
    return entry


def table(trace: Trace, details: Details = "compact") -> nodes.container:
    """The per-layer table under its title, as a docutils table every builder writes."""
    title, headers, rows = trace_rows(trace, details)
    box = nodes.container(classes=["evaldemo-trace"])
    box += _para(title, classes=["evaldemo-label", "evaldemo-trace-title"])
    table_node = nodes.table(classes=["evaldemo-trace-table"])
    group = nodes.tgroup(cols=len(headers))
    table_node += group
    group += [nodes.colspec(colwidth=width) for width in WIDTHS[details]]
    head = nodes.thead()
    head_row = nodes.row()
    head_row += [_cell(text) for text in headers]
    head += head_row
    group += head
    body = nodes.tbody()
    for cells, named, parts in rows:
        row = nodes.row(classes=["evaldemo-parts"] if parts else [])
        row += _cell(_path(cells[0]) if named else cells[0])
        row += [_cell(text) for text in cells[1:]]
        body += row
    group += body
    box += table_node
    return box

"""The comparison and the trace as builder-neutral nodes: "What the run shows", where the modes part.

Plain-language items (the outputs, where the modes part, the modules that read the
mode, repeatability, gradients, buffers), the run's notes, then the per-layer table:
folded in a ``<details>`` in HTML, a plain table with its title in every other builder.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from docutils import nodes

from .model import Comparison, ExampleResult, LayerDiff, LeafDiff, ModeModule, ModeRun, Trace

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


class evaldemo_module(nodes.literal):  # noqa: N801  # docutils names nodes in lowercase
    """A module's access path (``net[2]``); ``full`` is its whole ``repr``, shown on hover in HTML."""


class evaldemo_trace(nodes.container):  # noqa: N801
    """The per-layer table: its title paragraph, then the table; ``title`` repeats the title."""


class evaldemo_trace_title(nodes.paragraph):  # noqa: N801
    """The table's title: a paragraph in most builders, the ``<summary>`` of a ``<details>`` in HTML."""


def visit_module_html(self: Any, node: evaldemo_module) -> None:
    attributes = {"title": node["full"]} if node.get("full") else {}
    self.body.append(self.starttag(node, "code", "", CLASS="docutils literal notranslate", **attributes))
    self.body.append(html.escape(node.astext()) + "</code>")
    raise nodes.SkipNode


def visit_trace_html(self: Any, node: evaldemo_trace) -> None:
    """``<details>``: the title as its ``<summary>``, then the table, as Sphinx writes one."""
    self.body.append(self.starttag(node, "details", CLASS="evaldemo-trace"))
    self.body.append(f"<summary>{html.escape(str(node['title']))}</summary>\n")
    if "rows" not in node:
        return  # the children hold the table
    out = ['<table class="evaldemo-trace-table docutils align-default">\n<thead>\n'
           '<tr class="row-odd">']
    out += [f'<th class="head"><p>{html.escape(text)}</p></th>\n' for text in node["headers"]]
    out.append("</tr>\n</thead>\n<tbody>\n")
    for index, row in enumerate(node["rows"], start=2):
        classes = ("evaldemo-parts " if row.parts else "") + ("row-odd" if index % 2 else "row-even")
        out.append(f'<tr class="{classes}">')
        for number, text in enumerate(row.cells):
            text = html.escape(text)
            if number == 0 and row.name:
                text = f'<code class="docutils literal notranslate">{text}</code>'
            out.append(f"<td><p>{text}</p></td>\n")
        out.append("</tr>\n")
    out.append("</tbody>\n</table>\n</details>\n")
    self.body.append("".join(out))
    raise nodes.SkipNode


def depart_trace_html(self: Any, node: evaldemo_trace) -> None:
    self.body.append("</details>\n")


def skip_html(self: Any, node: nodes.Node) -> None:
    """The title is already the ``<summary>``."""
    raise nodes.SkipNode


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


def _named(name: str, label: str, full: str = "") -> list[nodes.Node]:
    """`` `net[2]` (Dropout, p=0.5) ``"""
    return [_path(name, full), nodes.Text(f" ({label})" if label else "")]


def _with_names(text: str) -> list[nodes.Node]:
    """Text from the worker, its `` `names` `` as literals."""
    parts: list[nodes.Node] = []
    for index, piece in enumerate(re.split(r"`([^`]+)`", text)):
        if piece:
            parts.append(_path(piece) if index % 2 else nodes.Text(piece))
    return parts


def _values(differing: int | None, total: int | None, largest: float | None) -> str:
    """``8 of 12 values differ (largest difference 1.09)``."""
    if not differing:
        return "equal"
    word = "value differs" if differing == 1 else "values differ"
    size = f" (largest difference {_number(largest)})" if largest is not None else ""
    return f"{differing} of {total} {word}{size}"


def _leaf_text(leaf: LeafDiff) -> str:
    if leaf.equal:
        return "equal"
    if leaf.note:
        return leaf.note
    if leaf.max_abs_diff is None or not leaf.total:
        return "differ"
    return _values(leaf.differing, leaf.total, leaf.max_abs_diff)


def _outputs(comparison: Comparison) -> list[nodes.Node]:
    a, b = comparison.modes
    if len(comparison.leaves) == 1:
        return [_para(f"Outputs ({a} vs {b}): {_leaf_text(comparison.leaves[0])}")]
    listing = nodes.bullet_list()
    for leaf in comparison.leaves:
        listing += _item(_para(nodes.literal(leaf.path, leaf.path), f": {_leaf_text(leaf)}"))
    verdict = "differ" if comparison.differ else "are equal"
    return [_para(f"Outputs ({a} vs {b}) {verdict}, leaf by leaf:"), listing]


def _calls(count: int) -> str:
    return "1 module call" if count == 1 else f"{count} module calls"


def _label(row: LayerDiff) -> str:
    return f"{row.type}, {row.settings}" if row.settings else row.type


def _parting(trace: Trace, outputs_differ: bool, fulls: dict[str, str]) -> nodes.paragraph:
    rows = {row.name: row for row in trace.layers}
    if not trace.parting:
        if trace.differing_calls or outputs_differ:
            return _para("The modes part outside the traced modules: no module's output differs "
                         "while its inputs were equal.")
        every = "the one traced module call" if trace.calls == 1 else f"all {_calls(trace.calls)} traced"
        return _para(f"The modes do not part: {every} gave the same output in both modes.")
    para = _para("The modes part at ")
    for index, name in enumerate(trace.parting[:5]):
        if index:
            para += nodes.Text(" and " if index == len(trace.parting[:5]) - 1 else ", ")
        row = rows.get(name)
        para += _named(name, _label(row) if row else "", fulls.get(name, ""))
    if len(trace.parting) > 5:
        para += nodes.Text(f" (and {len(trace.parting) - 5} more)")
    if trace.differing_calls > len(trace.parting):
        it = "it" if len(trace.parting) == 1 else "them"
        para += nodes.Text(f"; the layers after {it} inherit the difference")
    return para


def _modules(found: Sequence[ModeModule]) -> list[nodes.Node]:
    if not found:
        return [_para("Mode-dependent modules: none found")]
    para = _para("Mode-dependent modules: ")
    for index, module in enumerate(found):
        if index:
            para += nodes.Text("; " if found[index - 1].no_effect else ", ")
        para += _named(module.name, module.label, module.full)
        if module.no_effect:
            para += nodes.Text(f": {module.no_effect}")
    return [para]


def _repeatability(runs: Sequence[ModeRun]) -> nodes.paragraph:
    para = _para("Repeatability: ")
    for index, run in enumerate(runs):
        if index:
            para += nodes.Text("; ")
        if run.deterministic is None:
            para += nodes.Text(f"{run.mode}: not checked")
        elif run.deterministic:
            para += nodes.Text(f"{run.mode}: a second pass gave the same values")
        else:
            para += nodes.Text(f"{run.mode}: a second pass gave different values")
            if run.varied:
                para += nodes.Text(", first at ")
                para += _path(run.varied[0])
    return para


def _buffers(runs: Sequence[ModeRun]) -> nodes.paragraph:
    para = _para("Buffers changed by the pass: ")
    for index, run in enumerate(runs):
        para += nodes.Text(("; " if index else "") + f"{run.mode}: ")
        for number, name in enumerate(run.buffers_changed):
            para += nodes.Text(", " if number else "")
            para += _path(name)
        if not run.buffers_changed:
            para += nodes.Text("none")
    return para


def facts(result: ExampleResult, claims: nodes.Node | None = None, *, html: bool = False) -> nodes.container:
    """"What the run shows": the items, the notes, then the folded per-layer table
    (``html``: written by its visitor, see :func:`table`)."""
    box = nodes.container(classes=["evaldemo-comparison"])
    box += _para(nodes.strong("", "What the run shows"), classes=["evaldemo-title"])
    items = nodes.bullet_list()
    comparison, trace = result.comparison, result.trace
    if comparison is not None:
        items += _item(*_outputs(comparison))
    if trace is not None:
        fulls = {module.name: module.full for module in result.mode_dependent}
        items += _item(_parting(trace, comparison is not None and comparison.differ, fulls))
    items += _item(*_modules(result.mode_dependent))
    items += _item(_repeatability(result.runs))
    items += _item(_para("Output tracks gradients (requires_grad): "
                         + ", ".join(f"{r.mode} {_yes(r.requires_grad)}" for r in result.runs)))
    items += _item(_buffers(result.runs))
    if claims is not None:
        items += _item(claims)
    box += items
    if result.extra.get("device") == "cuda" and not all(r.deterministic for r in result.runs):
        box += _para(GPU_NOTE, classes=["evaldemo-note"])
    if comparison is not None and result.mode_dependent and not comparison.differ:
        box += _para(SAME_OUTPUT_NOTE, classes=["evaldemo-note"])
    for note in result.notes:
        box += _para("Note: ", *_with_names(note), classes=["evaldemo-note"])
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
        return ("n/a", "equal" if row.equal else "differ")
    largest = _number(row.max_abs_diff or 0.0)
    share = 100 * (row.differing or 0) / row.total if row.total else 0.0
    return (largest, f"{row.differing} of {row.total} ({share:.0f}%)")


def _remark(row: LayerDiff) -> str:
    if row.parts:
        return "the modes part here"
    if row.note:
        return row.note
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

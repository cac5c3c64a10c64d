"""Node classes of an example, and the HTML visitors that give them landmarks and layout.

Every node subclasses :class:`docutils.nodes.container`, so a builder without a
visitor of its own (text, LaTeX, man, Texinfo, epub) renders it as a container.
"""

from __future__ import annotations

import copy
import html
import re
from typing import Any
from weakref import WeakKeyDictionary

from docutils import nodes
from pygments.formatters import HtmlFormatter
from sphinx.highlighting import PygmentsBridge

from . import visual


class evaldemo_example(nodes.container):  # noqa: N801  # docutils names nodes in lowercase
    """One example: its caption and code (from the directive), then its outputs.

    Attributes set by the directive: ``request`` (dict, or absent when the options
    were invalid), ``raises``, ``hide_output``, ``code_line``, ``caption``.
    """


class evaldemo_panels(nodes.container):  # noqa: N801
    """The modes' panels, side by side on a wide screen."""


class evaldemo_panel(nodes.container):  # noqa: N801
    """One mode's outputs; ``label`` names it for assistive technology."""


class evaldemo_output(nodes.literal_block):  # noqa: N801
    """Printed text or an output's printout: a literal block that needs no highlighting."""


class evaldemo_code(nodes.literal_block):  # noqa: N801
    """Highlighted code inside an example (the code, the input line, a traceback)."""


class evaldemo_fold(nodes.container):  # noqa: N801
    """A second form of a value, folded away in HTML (``summary`` says what it holds).

    Other builders show its children as they are.
    """


class evaldemo_grid(nodes.container):  # noqa: N801
    """A marked element grid (``grid``: :class:`visual.Grid`); drawn in HTML only.

    It is empty, so other builders write nothing for it: the printout beside it holds
    the same numbers, and the comparison says what differs.
    """


class evaldemo_chart(nodes.container):  # noqa: N801
    """A train-against-eval chart (``chart``: :class:`visual.Chart`).

    Its child is the text alternative, which every builder shows; HTML draws the
    chart above it.
    """


class evaldemo_download(nodes.paragraph):  # noqa: N801
    """The line that links to the example as a script: the same node in every doctree,
    written only where the builder can link downloads (HTML), left out elsewhere."""


def visit_download_html(self: Any, node: evaldemo_download) -> None:
    if not getattr(self.builder, "download_support", False):  # epub: nothing to link to
        raise nodes.SkipNode
    self.visit_paragraph(node)


def depart_download_html(self: Any, node: evaldemo_download) -> None:
    self.depart_paragraph(node)


def skip(self: Any, node: nodes.Node) -> None:
    """A visitor for what a builder leaves out."""
    raise nodes.SkipNode


def visit_output_html(self: Any, node: evaldemo_output) -> None:
    """Written directly, escaped: Pygments adds nothing to plain text but time."""
    text = node.astext()
    text += "" if text.endswith("\n") else "\n"  # as Pygments writes it
    self.body.append(
        self.starttag(node, "div", CLASS="highlight-text notranslate")
        + f'<div class="highlight"><pre tabindex="0">{html.escape(text)}</pre></div></div>\n'
    )
    raise nodes.SkipNode


#: Columns a text builder's line of printed output may take: 80 less its indent of 3.
TEXT_WIDTH = 77
_LEAD = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\()?[\[(]*")
#: Where one value of a tuple or a dict ends and a tensor begins: ``), tensor(``, ``), 'key': tensor(``.
_NEXT = re.compile(r"\), (?=(?:'[^']*': |\"[^\"]*\": )?tensor\()")
#: A row of torch's printout: numbers (``-0.1234``, ``1.2e-05``, ``nan``, ``True``) and commas.
_VALUES = re.compile(r"^\s*(?:[-+]?(?:[\d.]+(?:e[-+]?\d+)?|nan|inf|True|False)\.?,?\s*)+")


def _rows(lines: list[str]) -> list[list[str]]:
    """The lines grouped into torch's rows: a row goes on while a line ends with a comma
    and the next one does not open a row of its own."""
    rows: list[list[str]] = []
    for line in lines:
        opens = line.lstrip().startswith("[") or _LEAD.match(line)[0].strip() != ""  # type: ignore[index]
        if rows and rows[-1][-1].rstrip().endswith(",") and not opens and line.strip():
            rows[-1].append(line)
        else:
            rows.append([line])
    return rows


def _reflow(row: list[str], per_line: int) -> list[str]:
    """One row of torch's printout with ``per_line`` values to a line, right-aligned as torch
    aligns them, the row's closing brackets (and any ``grad_fn=...``) after its last value."""
    lead = _LEAD.match(row[0])[0]  # type: ignore[index]  # always matches
    content = " ".join([row[0][len(lead):].strip(), *(line.strip() for line in row[1:])])
    close = min((content.find(mark) for mark in "])" if mark in content), default=len(content))
    body, end = content[:close], content[close:]
    items = [item.strip() for item in body.split(",") if item.strip()]
    if not items:
        return row
    width = max(len(item) for item in items)
    pad = " " * len(lead)
    lines = []
    for start in range(0, len(items), per_line):
        text = ", ".join(item.rjust(width) for item in items[start:start + per_line])
        last = start + per_line >= len(items)
        lines.append((lead if start == 0 else pad) + text + (end if last else ","))
    return lines


def _tensors(line: str, width: int) -> list[str]:
    """A long line where one tensor of a tuple (or a dict) ends and the next begins, split
    there: the next one starts a line of its own, one space in, as torch's tuples do."""
    found = _NEXT.search(line)
    if len(line) <= width or found is None:
        return [line]
    return [line[:found.start() + 2], *_tensors(" " + line[found.end():], width)]


def rewrap(text: str, width: int = TEXT_WIDTH) -> str:
    """A printout wider than ``width``, wrapped as torch wraps its own (fewer values to a
    line, each line of a row under the row's first value). Any other line (what the
    example printed itself) is shown as it was printed."""
    lines = text.splitlines()
    if all(len(line) <= width for line in lines):
        return text
    lines = [piece for line in lines for piece in _tensors(line, width)]
    out: list[str] = []
    for row in _rows(lines):
        if max(len(line) for line in row) <= width:
            out += row
            continue
        first = row[0][len(_LEAD.match(row[0])[0]):]  # type: ignore[index]  # always matches
        if not _VALUES.match(first):
            out += row  # not a row of values: printed text is shown as it was printed
            continue
        wrapped = row
        for per_line in range(max(1, first.count(",")), 0, -1):
            wrapped = _reflow(row, per_line)
            if all(len(line) <= width for line in wrapped):
                break
        out += wrapped if all(len(line) <= width for line in wrapped) else row
    return "\n".join(out)


def visit_output_text(self: Any, node: nodes.literal_block) -> None:
    """Printed text in an 80-column terminal: a line too long is wrapped (see :func:`rewrap`)."""
    self.new_state()
    self.add_text(rewrap(node.astext()))
    self.end_state(wrap=False)
    raise nodes.SkipNode


class FocusableHtmlFormatter(HtmlFormatter):  # type: ignore[type-arg]  # generic only in stubs
    """Pygments' HTML with ``<pre tabindex="0">``: a wide block scrolls, and a keyboard can
    scroll it too (WCAG 2.1.1, axe's scrollable-region-focusable)."""

    def wrap(self, source: Any) -> Any:
        # the empty span keeps a leading blank line, as Pygments' own <pre> does
        yield 0, '<pre tabindex="0"><span></span>'
        yield from source
        yield 0, "</pre>"


_BRIDGES: WeakKeyDictionary[PygmentsBridge, PygmentsBridge] = WeakKeyDictionary()


def _focusable(bridge: PygmentsBridge) -> PygmentsBridge:
    """The builder's highlighter (same style and options), writing focusable blocks."""
    if bridge not in _BRIDGES:
        twin = copy.copy(bridge)
        twin.formatter = FocusableHtmlFormatter
        _BRIDGES[bridge] = twin
    return _BRIDGES[bridge]


def visit_code_html(self: Any, node: evaldemo_code) -> None:
    """Sphinx's own literal block, highlighted by the focusable formatter.

    The input line is one short line: it is written directly, as a Python block that
    sphinx-copybutton finds, without a Pygments run (which costs more than the line).
    """
    if "evaldemo-input" in node["classes"]:
        text = node.astext() + "\n"
        self.body.append(
            self.starttag(node, "div", CLASS="highlight-python notranslate")
            + f'<div class="highlight"><pre tabindex="0">{html.escape(text)}</pre></div></div>\n'
        )
        raise nodes.SkipNode
    plain = self.highlighter
    self.highlighter = _focusable(plain)
    try:
        self.visit_literal_block(node)
    finally:
        self.highlighter = plain


def visit_example_html(self: Any, node: evaldemo_example) -> None:
    """A ``div`` like docutils' container."""
    self.body.append(self.starttag(node, "div", CLASS="docutils container"))


def depart_example_html(self: Any, node: evaldemo_example) -> None:
    self.body.append("</div>\n")


def visit_fold_html(self: Any, node: evaldemo_fold) -> None:
    self.body.append(self.starttag(node, "details", CLASS="evaldemo-fold"))
    self.body.append(f"<summary>{html.escape(str(node['summary']))}</summary>\n")


def depart_fold_html(self: Any, node: evaldemo_fold) -> None:
    self.body.append("</details>\n")


def visit_grid_html(self: Any, node: evaldemo_grid) -> None:
    self.body.append(visual.grid_html(node["grid"]))
    raise nodes.SkipNode


def visit_chart_html(self: Any, node: evaldemo_chart) -> None:
    self.body.append(
        self.starttag(node, "figure", CLASS="evaldemo-chart-box")
        + visual.chart_html(node["chart"], node.astext())
        + "</figure>\n"
    )
    raise nodes.SkipNode


def _example(node: nodes.Node) -> evaldemo_example | None:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, evaldemo_example):
            return parent
        parent = parent.parent
    return None


def panel_label(self: Any, node: evaldemo_panel) -> str:
    """The panel's label, made unique on the page (each panel is a landmark region).

    With a caption the caption is added; otherwise the example's number on the page,
    from the second example on (one example per page keeps the plain label).
    """
    label = str(node["label"])
    example = _example(node)
    if example is None:
        return label
    for child in example.children:
        if isinstance(child, nodes.paragraph) and "evaldemo-caption" in child["classes"]:
            return f"{label}: {child.astext()}"
    order = self.__dict__.get("_evaldemo_order")
    if order is None:
        order = {id(found): number for number, found in enumerate(
            self.document.findall(evaldemo_example), start=1)}
        self._evaldemo_order = order
    number = order.get(id(example), 1)
    return label if number == 1 else f"{label}, example {number} on this page"


def visit_panel_html(self: Any, node: evaldemo_panel) -> None:
    # the width its content asks for (render._need): side by side only when both fit
    need = f"--evaldemo-need: {float(node['need'])}em" if node.get("need") else None
    attributes = {"aria-label": panel_label(self, node), **({"style": need} if need else {})}
    self.body.append(self.starttag(node, "section", CLASS="evaldemo-panel", **attributes))


def depart_panel_html(self: Any, node: evaldemo_panel) -> None:
    self.body.append("</section>\n")


def example_title(node: nodes.Node) -> str:
    """The caption, for ``{ref}`` and ``{numref}`` (an example without one needs a link text)."""
    caption = node.get("caption") if isinstance(node, nodes.Element) else None
    return str(caption) if caption else ""


# -- the comparison's nodes (built by :mod:`.summary`) --------------------------------


class evaldemo_module(nodes.literal):  # noqa: N801  # docutils names nodes in lowercase
    """A module's access path (``net[2]``); ``full`` is its whole ``repr``, shown on hover in HTML."""


def visit_module_html(self: Any, node: evaldemo_module) -> None:
    attributes = {"title": node["full"]} if node.get("full") else {}
    self.body.append(self.starttag(node, "code", "", CLASS="docutils literal notranslate", **attributes))
    self.body.append(html.escape(node.astext()) + "</code>")
    raise nodes.SkipNode

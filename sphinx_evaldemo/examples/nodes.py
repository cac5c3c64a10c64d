"""Node classes, and the HTML visitors that give them landmarks and layout.

Every node subclasses :class:`docutils.nodes.container`, so a builder without a
visitor of its own (text, LaTeX, man, Texinfo, epub) renders it as a container.
"""

from __future__ import annotations

import html
import re
from typing import Any

from docutils import nodes


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


def visit_output_html(self: Any, node: evaldemo_output) -> None:
    """Written directly, escaped: Pygments adds nothing to plain text but time."""
    text = node.astext()
    text += "" if text.endswith("\n") else "\n"  # as Pygments writes it
    self.body.append(
        self.starttag(node, "div", CLASS="highlight-text notranslate")
        + f'<div class="highlight"><pre tabindex="0">{html.escape(text)}</pre></div></div>\n'
    )
    raise nodes.SkipNode


#: Sphinx's highlighted blocks open with a bare ``<pre>``; user text in them is escaped.
_PRE = re.compile(r"<pre(?=[\s>])(?![^>]*\btabindex=)")


def visit_example_html(self: Any, node: evaldemo_example) -> None:
    """A ``div`` like docutils' container; its code and outputs become keyboard-scrollable."""
    self.body.append(self.starttag(node, "div", CLASS="docutils container"))
    self.__dict__.setdefault("_evaldemo_starts", []).append(len(self.body))


def depart_example_html(self: Any, node: evaldemo_example) -> None:
    # A wide block scrolls inside its own box; tabindex lets a keyboard scroll it too
    # (WCAG 2.1.1, axe's scrollable-region-focusable).
    start = self._evaldemo_starts.pop()
    for index in range(start, len(self.body)):
        self.body[index] = _PRE.sub('<pre tabindex="0"', self.body[index])
    self.body.append("</div>\n")


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
    self.body.append(
        self.starttag(node, "section", CLASS="evaldemo-panel", **{"aria-label": panel_label(self, node)})
    )


def depart_panel_html(self: Any, node: evaldemo_panel) -> None:
    self.body.append("</section>\n")


def example_title(node: nodes.Node) -> str:
    """The caption, for ``{ref}`` and ``{numref}`` (an example without one needs a link text)."""
    caption = node.get("caption") if isinstance(node, nodes.Element) else None
    return str(caption) if caption else ""

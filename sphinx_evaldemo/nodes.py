"""Node classes, and the HTML visitors that give them landmarks and layout.

Every node subclasses :class:`docutils.nodes.container`, so a builder without a
visitor of its own (text, LaTeX, man, Texinfo, epub) renders it as a container.
"""

from __future__ import annotations

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


def visit_panel_html(self: Any, node: evaldemo_panel) -> None:
    self.body.append(
        self.starttag(node, "section", CLASS="evaldemo-panel", **{"aria-label": node["label"]})
    )


def depart_panel_html(self: Any, node: evaldemo_panel) -> None:
    self.body.append("</section>\n")


def example_title(node: nodes.Node) -> str:
    """The caption, for ``{ref}`` and ``{numref}`` (an example without one needs a link text)."""
    caption = node.get("caption") if isinstance(node, nodes.Element) else None
    return str(caption) if caption else ""

"""The articles' node classes, and how HTML writes them (other builders: as containers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from docutils import nodes

if TYPE_CHECKING:
    from sphinx.application import Sphinx


class evaldemo_article(nodes.container):  # noqa: N801  # docutils names nodes in lowercase
    """The article header: subtitle, meta line, tags, tldr, thumbnail."""


class evaldemo_tldr(nodes.container):  # noqa: N801
    """The summary box."""


class evaldemo_time(nodes.inline):  # noqa: N801
    """A date as shown; ``datetime`` holds it in ISO 8601 for HTML's ``<time>``."""


class evaldemo_pagelink(nodes.inline):  # noqa: N801
    """A link to a generated page: ``kind`` is ``tags`` or ``authors``, ``name`` the tag or
    author (None: the index of all of them). It becomes a link where that page is written
    (see :mod:`.pages`) and stays text elsewhere; ``quiet`` ones (the header's) say nothing
    when there is no page, the roles' warn."""


class evaldemo_articles(nodes.container):  # noqa: N801
    """Where a listing goes; filled when the page is written (``tags``, ``limit``)."""


def _visit_header(self: Any, node: evaldemo_article) -> None:
    self.body.append(self.starttag(node, "header"))


def _depart_header(self: Any, node: evaldemo_article) -> None:
    self.body.append("</header>\n")


def _visit_tldr(self: Any, node: evaldemo_tldr) -> None:
    self.body.append(self.starttag(node, "div", role="doc-abstract"))


def _depart_tldr(self: Any, node: evaldemo_tldr) -> None:
    self.body.append("</div>\n")


def _visit_time(self: Any, node: evaldemo_time) -> None:
    self.body.append(self.starttag(node, "time", "", datetime=node["datetime"]))


def _depart_time(self: Any, node: evaldemo_time) -> None:
    self.body.append("</time>")


def setup(app: Sphinx) -> None:
    app.add_node(evaldemo_article, html=(_visit_header, _depart_header))
    app.add_node(evaldemo_tldr, html=(_visit_tldr, _depart_tldr))
    app.add_node(evaldemo_time, html=(_visit_time, _depart_time))
    app.add_node(evaldemo_pagelink)
    app.add_node(evaldemo_articles)

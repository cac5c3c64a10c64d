"""Articles: Knowledge-Repo front matter as a page header, meta tags, tag and author pages,
listings, Atom feeds, private posts."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sphinx.application import Sphinx

#: the articles' stylesheet (in the package's static folder, which the extension serves)
CSS = "evaldemo-articles.css"


def _add_css(app: Sphinx) -> None:
    if app.builder.format == "html":
        app.add_css_file(CSS)


def setup(app: Sphinx) -> None:
    """Wire the articles feature into Sphinx (called by :mod:`sphinx_evaldemo.extension`)."""
    from . import feeds, header, listing, metatags, nodes, pages, private
    from .catalog import ArticleCollector

    nodes.setup(app)
    header.setup(app)
    app.add_env_collector(ArticleCollector)
    listing.setup(app)
    pages.setup(app)
    feeds.setup(app)
    metatags.setup(app)
    private.setup(app)
    app.connect("builder-inited", _add_css)

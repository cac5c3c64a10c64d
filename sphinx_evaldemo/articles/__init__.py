"""Articles: Knowledge-Repo front matter as a page header, meta tags, tag pages, listings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sphinx.application import Sphinx


def setup(app: Sphinx) -> None:
    """Wire the articles feature into Sphinx (called by :mod:`sphinx_evaldemo.extension`)."""
    from . import header, tags

    header.setup(app)
    tags.setup(app)

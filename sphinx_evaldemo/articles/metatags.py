"""An article's ``<head>``: description, keywords, author, Open Graph, ``noindex`` for a
private post, and a link to the Atom feed on every page."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin

from .catalog import ArticleRecord, articles

if TYPE_CHECKING:
    from docutils import nodes
    from sphinx.application import Sphinx

#: When sphinxext-opengraph is enabled, it writes the Open Graph tags and ours step aside.
_OPENGRAPH = "sphinxext.opengraph"


def meta_tags(record: ArticleRecord, image: str | None, *, open_graph: bool = True
              ) -> list[tuple[str, str, str]]:
    """``(attribute, name, content)`` of the page's meta tags, content as plain text."""
    meta = record.meta
    tags = []
    if meta.private:
        tags.append(("name", "robots", "noindex"))
    if record.summary:
        tags.append(("name", "description", " ".join(record.summary.split())))
    if meta.tags:
        tags.append(("name", "keywords", ", ".join(meta.tags)))
    if meta.authors:
        tags.append(("name", "author", ", ".join(meta.authors)))
    if open_graph:
        tags += [("property", "og:title", record.title), ("property", "og:type", "article")]
        if record.summary:
            tags.append(("property", "og:description", " ".join(record.summary.split())))
        if image:
            tags.append(("property", "og:image", image))
        if meta.created_at is not None:
            tags.append(("property", "article:published_time", meta.created_at.isoformat()))
        if meta.updated_at is not None:
            tags.append(("property", "article:modified_time", meta.updated_at.isoformat()))
        tags += [("property", "article:tag", tag) for tag in meta.tags]
    return tags


def image_url(app: Sphinx, record: ArticleRecord, pathto: Any) -> str | None:
    """The thumbnail's URL: absolute under ``html_baseurl``, else relative to the page."""
    if record.image_url:
        return None if record.image_url.startswith("data:") else record.image_url
    if record.image is None or record.image not in app.env.images:
        return None
    target = f"{app.builder.imagedir}/{quote(app.env.images[record.image][1])}"
    base = app.config.html_baseurl
    if base:
        return urljoin(str(base).rstrip("/") + "/", target)
    return str(pathto(target, resource=True))


def on_page_context(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                    doctree: nodes.document | None) -> None:
    from .feeds import head_links

    context["metatags"] = context.get("metatags", "") + head_links(app, context["pathto"])
    record = articles(app.env).get(pagename)
    if record is None or doctree is None:
        return
    existing = context["metatags"]
    present = {name.lower() for name in
               re.findall(r"""(?:name|property)\s*=\s*["']([^"']+)""", existing)}
    image = image_url(app, record, context["pathto"])
    tags = meta_tags(record, image, open_graph=_OPENGRAPH not in app.extensions)
    added = "".join(
        f'\n    <meta {attr}="{html.escape(name)}" content="{html.escape(content)}" />'
        for attr, name, content in tags
        if name.lower() not in present
    )
    context["metatags"] = existing + added


def setup(app: Sphinx) -> None:
    # after sphinxext-opengraph and MyST's html_meta, so that theirs win over ours
    app.connect("html-page-context", on_page_context, priority=600)

"""Lists of articles as cards (``{evaldemo-articles}``, tag and author pages), and the roles
that link to those pages."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from . import dates
from .catalog import LISTING_KEY, ArticleRecord, changed, listings, page_data
from .names import key
from .nodes import evaldemo_articles, evaldemo_pagelink

if TYPE_CHECKING:
    from docutils.parsers.rst.states import Inliner
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

logger = logging.getLogger(__name__)

#: ``(kind, name) -> URI`` of a generated page (``kind`` is ``tags`` or ``authors``,
#: ``name`` None for the index of all of them), or None where there is no such page
PageLink = Callable[[str, str | None], str | None]


def newest_first(records: dict[str, ArticleRecord]) -> list[tuple[str, ArticleRecord]]:
    """Newest ``created_at`` first (time zones respected), undated last, then by title."""
    def key(item: tuple[str, ArticleRecord]) -> tuple[int, float, str, str]:
        docname, record = item
        when = record.meta.created_at
        stamp = -dates.instant(when).timestamp() if when is not None else 0.0
        return (when is None, stamp, record.title.casefold(), docname)

    return sorted(records.items(), key=key)


def parse_options(options: dict[str, str | None]) -> tuple[tuple[str, ...], int | None,
                                                           list[str]]:
    """``:tags: a, b`` and ``:limit: N`` of a listing; problems as messages."""
    problems = []
    tags: tuple[str, ...] = ()
    if "tags" in options:
        tags = tuple(t.strip() for t in (options["tags"] or "").split(",") if t.strip())
        if not tags:
            problems.append(":tags: expects tag names separated by commas; none were given")
    limit = None
    if "limit" in options:
        text = (options["limit"] or "").strip()
        if text.isdigit() and int(text) > 0:
            limit = int(text)
        else:
            problems.append(f":limit: expects a positive whole number, got {text!r}; "
                            "every article is listed")
    return tags, limit, problems


def _link(text: str, uri: str | None, classes: list[str]) -> nodes.Element:
    if uri is None:
        return nodes.inline("", text, classes=classes)
    return nodes.reference("", text, internal=True, refuri=uri, classes=classes)


def listing_nodes(
    entries: Iterable[tuple[str, ArticleRecord]],
    *,
    link: Callable[[str], str | None],
    image: Callable[[ArticleRecord], nodes.image | None],
    page_link: PageLink,
    empty: str,
) -> nodes.container:
    """One card per article: the thumbnail (a link) beside the linked title, the authors
    and dates, the tldr and the tags."""
    listing = nodes.container(classes=["evaldemo-listing"])
    for docname, record in entries:
        item = nodes.container(classes=["evaldemo-listing-item", "evaldemo-card"])
        uri = link(docname)
        picture = image(record)
        if picture is not None:
            picture["classes"].append("evaldemo-listing-thumb")
            holder = nodes.container(classes=["evaldemo-card-thumb"])
            if uri:  # the same link as the title; the image's alt text names it
                picture["alt"] = record.title
                holder += nodes.reference("", "", picture, internal=True, refuri=uri,
                                          classes=["evaldemo-card-thumb-link"])
            else:
                holder += picture
            item += holder
            item["classes"].append("evaldemo-has-thumbnail")
        body = nodes.container(classes=["evaldemo-card-body"])
        heading = nodes.strong("", record.title)
        title = nodes.paragraph(classes=["evaldemo-listing-title"])
        title += nodes.reference("", "", heading, internal=True, refuri=uri) if uri else heading
        body += title
        meta = nodes.paragraph(classes=["evaldemo-listing-meta"])
        authors = [_link(a, page_link("authors", a), ["evaldemo-author"])
                   for a in record.meta.authors]
        for index, author in enumerate(authors):
            if index:
                meta += nodes.Text(" and " if index == len(authors) - 1 else ", ")
            meta += author
        when = dates.dates_line(record.meta.created_at, record.meta.updated_at)
        if when:
            meta += nodes.Text(f"{' · ' if authors else ''}{when}")
        if len(meta):
            body += meta
        if record.tldr:
            body += nodes.container("", *(n.deepcopy() for n in record.tldr),
                                    classes=["evaldemo-listing-tldr"])
        if record.meta.tags:
            chips = nodes.paragraph("", "", nodes.inline("", "Tags: ", classes=["evaldemo-label"]),
                                    classes=["evaldemo-tags", "evaldemo-listing-tags"])
            for index, tag in enumerate(record.meta.tags):
                if index:
                    chips += nodes.inline("", ", ", classes=["evaldemo-sep"])
                chips += _link(tag, page_link("tags", tag), ["evaldemo-tag"])
            body += chips
        item += body
        listing += item
    if not len(listing):
        listing += nodes.paragraph("", empty, classes=["evaldemo-listing-empty"])
    return listing


def select(records: dict[str, ArticleRecord], tags: tuple[str, ...], limit: int | None,
           exclude: str | None = None) -> list[tuple[str, ArticleRecord]]:
    """The articles a listing shows: with one of ``tags`` (any spelling), newest first."""
    wanted = {key(tag) for tag in tags}
    chosen = [
        (docname, record) for docname, record in newest_first(records)
        if docname != exclude and (not wanted or wanted & {key(t) for t in record.meta.tags})
    ]
    return chosen[:limit] if limit else chosen


# --------------------------------------------------------------------------- Sphinx side


class ArticlesDirective(SphinxDirective):
    """``{evaldemo-articles}``: the latest articles, optionally by tag (``:tags: a, b``)."""

    option_spec: ClassVar[dict[str, Any]] = {"tags": lambda v: v, "limit": lambda v: v}

    def run(self) -> list[nodes.Node]:
        tags, limit, problems = parse_options(dict(self.options))
        for problem in problems:
            logger.warning("%s", problem, location=(self.env.docname, self.lineno),
                           type="evaldemo", subtype="articles")
        node = evaldemo_articles(classes=["evaldemo-articles"], tags=list(tags), limit=limit)
        self.set_source_info(node)
        page_data(self.env)[LISTING_KEY] = True
        return [node]


def _role(kind: str) -> Callable[..., tuple[list[nodes.Node], list[nodes.system_message]]]:
    def role(name: str, rawtext: str, text: str, lineno: int, inliner: Inliner,
             options: dict[str, Any] | None = None, content: list[str] | None = None
             ) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        match = re.fullmatch(r"(.*?)\s*<([^<>]+)>", text, re.DOTALL)
        label, target = (match[1] or match[2], match[2].strip()) if match else (text, None)
        node = evaldemo_pagelink(rawtext, label, kind=kind, name=target, quiet=False,
                                 classes=[f"evaldemo-{kind[:-1]}-link"])
        node.line = lineno
        return [node], []

    role.__doc__ = (f"``{{evaldemo-{kind}}}`All``` links the index of {kind}, "
                    f"``{{evaldemo-{kind}}}`Text <name>``` one of them.")
    return role


def on_get_updated(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Pages with a listing are written again whenever an article changed, came or went."""
    if changed(env):
        return sorted(listings(env) & env.found_docs)
    return []


def setup(app: Sphinx) -> None:
    app.add_directive("evaldemo-articles", ArticlesDirective)
    app.add_role("evaldemo-tags", _role("tags"))
    app.add_role("evaldemo-authors", _role("authors"))
    app.connect("env-get-updated", on_get_updated)

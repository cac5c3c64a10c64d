"""Tag pages, the tag index and the ``{evaldemo-articles}`` listing, made at build time.

The tag pages are not source files: the HTML builders (``html``, ``dirhtml``) write them
through ``html-collect-pages`` from what the collector holds, so they are right after any
rebuild, parallel or incremental, and nothing is written into the source folder. Other
builders show tags as plain text.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from docutils import nodes
from sphinx.errors import NoUri
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.osutil import relative_uri

from . import frontmatter
from .catalog import LISTING_KEY, ArticleRecord, articles, changed, listings, page_data
from .header import evaldemo_tag

if TYPE_CHECKING:
    from docutils.parsers.rst.states import Inliner
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

logger = logging.getLogger(__name__)

#: where the tag pages go in the output: ``tags/index`` and ``tags/<slug>``
TAG_DIR = "tags"
#: builders that get tag pages (and so tag links)
TAG_BUILDERS = ("html", "dirhtml")
#: in each tag page's body, so that a stale one can be told from a file of the user's
MARKER = "evaldemo-tag-page"


class evaldemo_articles(nodes.container):  # noqa: N801  # docutils names nodes in lowercase
    """Where a listing goes; filled when the page is written (``tags``, ``limit``)."""


# --------------------------------------------------------------------------- pure helpers


def slug(tag: str) -> str:
    """The tag's page name: lower case, words joined by ``-``; any script is kept."""
    text = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFKC", tag).casefold()).strip("-")
    return text or "tag-" + hashlib.sha256(tag.encode()).hexdigest()[:8]


def newest_first(records: dict[str, ArticleRecord]) -> list[tuple[str, ArticleRecord]]:
    """Newest ``created_at`` first (time zones respected), undated last, then by title."""
    def key(item: tuple[str, ArticleRecord]) -> tuple[int, float, str, str]:
        docname, record = item
        when = record.meta.created_at
        stamp = -frontmatter.instant(when).timestamp() if when is not None else 0.0
        return (when is None, stamp, record.title.casefold(), docname)

    return sorted(records.items(), key=key)


def tag_groups(records: dict[str, ArticleRecord]) -> dict[str, tuple[str, list[str]]]:
    """``{slug: (tag as most often spelt, docnames)}``: ``Deep Learning`` and
    ``deep-learning`` are one tag."""
    spellings: dict[str, dict[str, int]] = {}
    docs: dict[str, list[str]] = {}
    for docname, record in newest_first(records):
        for tag in record.meta.tags:
            key = slug(tag)
            counts = spellings.setdefault(key, {})
            counts[tag] = counts.get(tag, 0) + 1
            if docname not in docs.setdefault(key, []):
                docs[key].append(docname)
    return {
        key: (min(counts, key=lambda t: (-counts[t], t)), docs[key])
        for key, counts in sorted(spellings.items())
    }


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


# --------------------------------------------------------------------------- listing nodes


def listing_nodes(
    entries: Iterable[tuple[str, ArticleRecord]],
    *,
    link: Callable[[str], str | None],
    image: Callable[[ArticleRecord], nodes.image | None],
    empty: str,
) -> nodes.container:
    """One item per article: thumbnail, title (linked), byline and dates, tldr."""
    listing = nodes.container(classes=["evaldemo-listing"])
    for docname, record in entries:
        item = nodes.container(classes=["evaldemo-listing-item"])
        picture = image(record)
        if picture is not None:
            item += picture
        uri = link(docname)
        heading = nodes.strong("", record.title)
        title = nodes.paragraph(classes=["evaldemo-listing-title"])
        title += nodes.reference("", "", heading, internal=True, refuri=uri) if uri else heading
        item += title
        line = " · ".join(part for part in (
            frontmatter.byline(record.meta.authors),
            frontmatter.dates_line(record.meta.created_at, record.meta.updated_at),
        ) if part)
        if line:
            item += nodes.paragraph("", line, classes=["evaldemo-listing-meta"])
        if record.tldr:
            item += nodes.paragraph("", "", *(n.deepcopy() for n in record.tldr),
                                    classes=["evaldemo-listing-tldr"])
        listing += item
    if not len(listing):
        listing += nodes.paragraph("", empty, classes=["evaldemo-listing-empty"])
    return listing


def _select(records: dict[str, ArticleRecord], tags: tuple[str, ...], limit: int | None,
            exclude: str | None = None) -> list[tuple[str, ArticleRecord]]:
    wanted = {slug(tag) for tag in tags}
    chosen = [
        (docname, record) for docname, record in newest_first(records)
        if docname != exclude and (not wanted or wanted & {slug(t) for t in record.meta.tags})
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


def tags_role(name: str, rawtext: str, text: str, lineno: int, inliner: Inliner,
              options: dict[str, Any] | None = None, content: list[str] | None = None
              ) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """``{evaldemo-tags}`All tags``` links the tag index, ``{evaldemo-tags}`Text <tag>``` a tag."""
    match = re.fullmatch(r"(.*?)\s*<([^<>]+)>", text, re.DOTALL)
    label, tag = (match[1] or match[2], match[2].strip()) if match else (text, None)
    node = evaldemo_tag(rawtext, label, tag=tag, classes=["evaldemo-tag-link"])
    node.line = lineno
    return [node], []


def builds_tag_pages(app: Sphinx) -> bool:
    return app.builder.name in TAG_BUILDERS


def page_name(tag: str | None) -> str:
    return f"{TAG_DIR}/{slug(tag)}" if tag is not None else f"{TAG_DIR}/index"


def _relative(app: Sphinx, fromdoc: str, todoc: str) -> str | None:
    try:
        return app.builder.get_relative_uri(fromdoc, todoc)
    except NoUri:
        return None


def on_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Tag links (where there are tag pages) and listings, from the merged environment."""
    records = articles(app.env)
    groups = tag_groups(records)
    pages = builds_tag_pages(app)
    for tag in list(doctree.findall(evaldemo_tag)):
        target = tag.get("tag")
        missing = (f"no article is tagged {target!r}, so it has no tag page"
                   if target is not None and slug(target) not in groups else
                   "there are no articles, so there is no tag index" if not records else None)
        if missing is not None:
            logger.warning("%s", missing, location=tag, type="evaldemo", subtype="tags")
            continue
        if pages:
            uri = _relative(app, docname, page_name(target))
            if uri is not None:
                tag.replace_self(nodes.reference("", "", *tag.deepcopy().children, internal=True,
                                                 refuri=uri, classes=tag["classes"]))
    html_images = app.builder.format == "html"
    remote_ok = app.builder.supported_remote_images
    for listing in list(doctree.findall(evaldemo_articles)):
        chosen = _select(records, tuple(listing["tags"]), listing["limit"], exclude=docname)
        listing.replace_self(listing_nodes(
            chosen,
            link=lambda other: _relative(app, docname, other),
            image=lambda record: _doc_image(record, remote_ok) if html_images else None,
            empty="No articles yet." if not listing["tags"] else
                  "No articles with these tags yet.",
        ))


def _doc_image(record: ArticleRecord, remote_ok: bool) -> nodes.image | None:
    """A thumbnail in a page's doctree: the builder copies it and rewrites the URI."""
    if record.image_url:
        if not remote_ok:
            return None
        return nodes.image(uri=record.image_url, alt="", candidates={"?": record.image_url},
                           classes=["evaldemo-listing-thumb"])
    if record.image:
        return nodes.image(uri=record.image, alt="", candidates={"*": record.image},
                           classes=["evaldemo-listing-thumb"])
    return None


def on_get_updated(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Pages with a listing are written again whenever an article changed, came or went."""
    if changed(env):
        return sorted(listings(env) & env.found_docs)
    return []


@dataclass(frozen=True, slots=True)
class TagPage:
    """One generated page: its title (for ``<title>``), its heading, its content."""

    title: str
    heading: str
    ident: str
    content: list[nodes.Element]


def on_collect_pages(app: Sphinx) -> Iterator[tuple[str, dict[str, Any], str]]:
    if not builds_tag_pages(app):
        return
    records = articles(app.env)
    groups = tag_groups(records)
    pages: dict[str, TagPage] = {}

    index = nodes.bullet_list(classes=["evaldemo-tag-index"])
    for key, (tag, docnames) in groups.items():
        name = page_name(tag)
        count = f"{len(docnames)} article{'s' * (len(docnames) != 1)}"
        index += nodes.list_item("", nodes.paragraph(
            "", "", nodes.reference("", tag, internal=True,
                                    refuri=_relative(app, page_name(None), name) or ""),
            nodes.Text(f" ({count})")))
        body = listing_nodes(
            [(doc, records[doc]) for doc in docnames],
            link=partial(_relative, app, name),
            image=partial(_page_image, app, name),
            empty="",
        )
        back = nodes.reference("", "All tags", internal=True,
                               refuri=_relative(app, name, page_name(None)) or "")
        pages[name] = TagPage(f"Tag: {tag}", f"Articles tagged “{tag}”", key,
                              [nodes.paragraph("", f"{count}, newest first. ", back), body])
    if records:  # a project without articles gets no tag pages at all
        summary = (f"{len(records)} article{'s' * (len(records) != 1)} in {len(groups)} "
                   f"tag{'s' * (len(groups) != 1)}.")
        pages[page_name(None)] = TagPage("Tags", "Tags", "index", [
            nodes.paragraph("", summary), index] if groups else [
            nodes.paragraph("", "No article has a tag yet.")])

    clashes = sorted(set(pages) & app.env.found_docs)
    for name in clashes:
        logger.warning("the document %r has the name of a tag page; that tag page is not "
                       "written", name, type="evaldemo", subtype="tags")
    _remove_stale(app, {name for name in pages if name not in clashes})
    for name, page in pages.items():
        if name not in clashes:
            yield name, _context(app, page), "page.html"


def _context(app: Sphinx, page: TagPage) -> dict[str, Any]:
    """The page's body: the heading written here (no section, so no numbering state of the
    builder is needed, even in a build that wrote no document), the rest rendered."""
    holder = nodes.container("", *page.content)
    fragment = app.builder.render_partial(holder)["fragment"]  # type: ignore[attr-defined]
    heading = html.escape(page.heading)
    body = (f'<section class="{MARKER}" id="tag-{html.escape(page.ident)}">\n'
            f"<h1>{heading}</h1>\n{fragment}</section>\n")
    return {"title": html.escape(page.title), "body": body, "display_toc": False}


def _page_image(app: Sphinx, pagename: str, record: ArticleRecord) -> nodes.image | None:
    """A thumbnail on a generated page: its URI is final, relative to that page."""
    if record.image_url:
        uri = record.image_url
    elif record.image and record.image in app.env.images:
        name = quote(app.env.images[record.image][1])
        target = f"{app.builder.imagedir}/{name}"
        uri = relative_uri(app.builder.get_target_uri(pagename), target)
    else:
        return None
    return nodes.image(uri=uri, alt="", classes=["evaldemo-listing-thumb"])


def _remove_stale(app: Sphinx, current: set[str]) -> None:
    """Delete tag pages of tags that no longer exist (only files this extension wrote)."""
    folder = Path(app.outdir, TAG_DIR)
    if not folder.is_dir():
        return
    keep = {Path(app.builder.get_outfilename(name)).resolve()  # type: ignore[attr-defined]
            for name in current}
    for path in folder.rglob("*.html"):
        if path.resolve() in keep:
            continue
        try:
            if MARKER in path.read_text(encoding="utf-8", errors="replace"):
                path.unlink()
        except OSError:
            continue


def setup(app: Sphinx) -> None:
    app.add_node(evaldemo_articles)
    app.add_directive("evaldemo-articles", ArticlesDirective)
    app.add_role("evaldemo-tags", tags_role)
    app.connect("doctree-resolved", on_resolved)
    app.connect("env-get-updated", on_get_updated)
    app.connect("html-collect-pages", on_collect_pages)

"""Tag and author pages and their indexes, made at build time, and every link to them.

These pages are not source files: the HTML builders (``html``, ``dirhtml``) write them
through ``html-collect-pages`` from what the collector holds, so they are right after any
rebuild, parallel or incremental, and nothing is written into the source folder. Other
builders show tags and authors as plain text.

Which pages there are is decided once per build, after reading (``env-updated``): one per
tag and per author of a public article (:mod:`.names` gives each a safe file), and an
index of each kind. A page that cannot be written there (a document of that name, a
folder in the way, no permission) is one warning, and nothing links to it.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from docutils import nodes
from sphinx.errors import NoUri
from sphinx.util import logging
from sphinx.util.osutil import relative_uri

from . import names
from .catalog import ArticleRecord, articles, public
from .listing import listing_nodes, newest_first, select
from .nodes import evaldemo_articles, evaldemo_pagelink

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

logger = logging.getLogger(__name__)

#: builders that get the pages (and so the links)
PAGE_BUILDERS = ("html", "dirhtml")
#: in each generated page's body, so that a stale one can be told from a file of the user's
MARKER = "evaldemo-tag-page"
#: the plan of this build, on ``env``
PLAN = "evaldemo_pages_plan"
#: ``{(kind, key)}`` that had a page in the last build, on ``env``
LINKABLE = "evaldemo_linkable"


@dataclass(frozen=True, slots=True)
class Kind:
    """What differs between tag pages and author pages."""

    folder: str
    noun: str
    index_title: str
    heading: str  # with ``{}`` for the name

    def field(self, record: ArticleRecord) -> tuple[str, ...]:
        return record.meta.tags if self.folder == "tags" else record.meta.authors


KINDS = {
    "tags": Kind("tags", "tag", "Tags", "Articles tagged “{}”"),
    "authors": Kind("authors", "author", "Authors", "Articles by {}"),
}


@dataclass
class Plan:
    """This build's generated pages: ``{kind: {key: Group}}``, and the pages not written."""

    groups: dict[str, dict[str, names.Group]] = field(default_factory=dict)
    #: page names with no index because there are no (public) articles
    indexes: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)

    def page(self, kind: str, name: str | None) -> str | None:
        """The page name for a tag or author (None: the index), or None when it has none."""
        if name is None:
            page = f"{KINDS[kind].folder}/index"
            return page if page in self.indexes and page not in self.blocked else None
        group = self.groups.get(kind, {}).get(names.key(name))
        if group is None:
            return None
        page = f"{KINDS[kind].folder}/{group.file}"
        return None if page in self.blocked else page

    def pages(self) -> list[str]:
        found = sorted(self.indexes)
        for kind, groups in self.groups.items():
            found += [f"{KINDS[kind].folder}/{group.file}" for group in groups.values()]
        return found


def make_plan(records: dict[str, ArticleRecord]) -> Plan:
    """Every page the public ``records`` call for (pure)."""
    plan = Plan()
    ordered = newest_first(records)
    for kind, spec in KINDS.items():
        plan.groups[kind] = names.groups((doc, spec.field(rec)) for doc, rec in ordered)
        if records:
            plan.indexes.add(f"{spec.folder}/index")
    return plan


def builds_pages(app: Sphinx) -> bool:
    return app.builder.name in PAGE_BUILDERS


def plan_of(env: BuildEnvironment) -> Plan:
    found = getattr(env, PLAN, None)
    return found if isinstance(found, Plan) else Plan()


def on_env_updated(app: Sphinx, env: BuildEnvironment) -> None:
    """Decide this build's pages, and find those that cannot be written, before any link."""
    if not builds_pages(app):
        setattr(env, PLAN, Plan())
        return
    plan = make_plan(public(env))
    for page in plan.pages():
        reason = _unwritable(app, page)
        if reason is None:
            continue
        plan.blocked.add(page)
        logger.warning("the page %r (%s) cannot be written: %s; nothing links to it", page,
                       "an index" if page.endswith("/index") else "a tag or author page", reason,
                       type="evaldemo", subtype="tags")
    setattr(env, PLAN, plan)


def on_get_updated(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Articles whose tag or author links change because another article came, went or
    changed (a private post's tag gets a page when a public post takes it): written again."""
    plan = make_plan(public(env))
    now = {(kind, key) for kind, groups in plan.groups.items() for key in groups}
    before = getattr(env, LINKABLE, None)
    setattr(env, LINKABLE, now)
    if before is None or before == now:
        return []
    flipped = now ^ before
    return sorted(
        doc for doc, record in articles(env).items() if doc in env.found_docs
        and any((kind, names.key(name)) in flipped
                for kind, spec in KINDS.items() for name in spec.field(record)))


def _unwritable(app: Sphinx, page: str) -> str | None:
    if page in app.env.found_docs:
        return "a document has that name, and it is kept"
    path = Path(app.builder.get_outfilename(page))  # type: ignore[attr-defined]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not path.is_file():
            return f"{path} is in the way and is not a file"
        with path.open("ab"):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def _relative(app: Sphinx, fromdoc: str, todoc: str | None) -> str | None:
    if todoc is None:
        return None
    try:
        return app.builder.get_relative_uri(fromdoc, todoc)
    except NoUri:
        return None


def page_link(app: Sphinx, fromdoc: str, kind: str, name: str | None) -> str | None:
    """The URI of a generated page from ``fromdoc``, or None where it is not written."""
    if not builds_pages(app):
        return None
    return _relative(app, fromdoc, plan_of(app.env).page(kind, name))


_MISSING = {
    ("tags", True): "no article is tagged {!r}, so it has no tag page",
    ("authors", True): "no article is by {!r}, so there is no author page",
    ("tags", False): "there are no articles, so there is no tag index",
    ("authors", False): "there are no articles, so there is no author index",
}


def on_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Links to tag and author pages, and listings, from the merged environment."""
    records = public(app.env)
    plan = make_plan(records)  # what exists, whatever this builder writes
    for node in list(doctree.findall(evaldemo_pagelink)):
        kind, name = node["kind"], node.get("name")
        if plan.page(kind, name) is None and not node.get("quiet"):
            logger.warning("%s", _MISSING[kind, name is not None].format(name), location=node,
                           type="evaldemo", subtype=kind)
            continue
        uri = page_link(app, docname, kind, name)
        if uri is not None:
            node.replace_self(nodes.reference("", "", *node.deepcopy().children, internal=True,
                                              refuri=uri, classes=node["classes"]))
    html_images = app.builder.format == "html"
    remote_ok = app.builder.supported_remote_images
    for listing in list(doctree.findall(evaldemo_articles)):
        chosen = select(records, tuple(listing["tags"]), listing["limit"], exclude=docname)
        listing.replace_self(listing_nodes(
            chosen,
            link=lambda other: _relative(app, docname, other),
            image=lambda record: _doc_image(record, remote_ok) if html_images else None,
            page_link=partial(page_link, app, docname),
            empty="No articles yet." if not listing["tags"] else
                  "No articles with these tags yet.",
        ))


def _doc_image(record: ArticleRecord, remote_ok: bool) -> nodes.image | None:
    """A thumbnail in a page's doctree: the builder copies it and rewrites the URI."""
    if record.image_url:
        if not remote_ok:
            return None
        return nodes.image(uri=record.image_url, alt="", candidates={"?": record.image_url})
    if record.image:
        return nodes.image(uri=record.image, alt="", candidates={"*": record.image})
    return None


# --------------------------------------------------------------------------- the pages


@dataclass(frozen=True, slots=True)
class Page:
    """One generated page: its title (for ``<title>``), its heading, its content."""

    title: str
    heading: str
    ident: str
    content: list[nodes.Element]


def on_collect_pages(app: Sphinx) -> Iterator[tuple[str, dict[str, Any], str]]:
    if not builds_pages(app):
        return
    records = public(app.env)
    plan = plan_of(app.env)
    pages: dict[str, Page] = {}
    for kind, spec in KINDS.items():
        index_name = f"{spec.folder}/index"
        index = nodes.bullet_list(classes=[f"evaldemo-{spec.noun}-index"])
        for group in plan.groups.get(kind, {}).values():
            name = f"{spec.folder}/{group.file}"
            if name in plan.blocked:
                continue
            count = f"{len(group.docnames)} article{'s' * (len(group.docnames) != 1)}"
            index += nodes.list_item("", nodes.paragraph(
                "", "", nodes.reference("", group.label, internal=True,
                                        refuri=_relative(app, index_name, name) or ""),
                nodes.Text(f" ({count})")))
            body = listing_nodes(
                [(doc, records[doc]) for doc in group.docnames],
                link=partial(_relative, app, name),
                image=partial(_page_image, app, name),
                page_link=partial(page_link, app, name),
                empty="",
            )
            back = _relative(app, name, plan.page(kind, None))
            intro = nodes.paragraph("", f"{count}, newest first. ")
            if back:
                intro += nodes.reference("", f"All {spec.folder}", internal=True, refuri=back)
            pages[name] = Page(f"{spec.noun.capitalize()}: {group.label}",
                               spec.heading.format(group.label), f"{spec.noun}-{group.file}",
                               [intro, body])
        if index_name in plan.indexes and index_name not in plan.blocked:
            total = len(plan.groups.get(kind, {}))
            summary = (f"{len(records)} article{'s' * (len(records) != 1)}, {total} "
                       f"{spec.noun}{'s' * (total != 1)}.")
            pages[index_name] = Page(spec.index_title, spec.index_title, f"{spec.folder}-index",
                                     [nodes.paragraph("", summary), index] if total else [
                                         nodes.paragraph("", f"No article has a {spec.noun} yet.")])
    _remove_stale(app, set(pages))
    for name, page in pages.items():
        yield name, _context(app, page), "page.html"


def _context(app: Sphinx, page: Page) -> dict[str, Any]:
    """The page's body: the heading written here (no section, so no numbering state of the
    builder is needed, even in a build that wrote no document), the rest rendered."""
    holder = nodes.container("", *page.content)
    fragment = app.builder.render_partial(holder)["fragment"]  # type: ignore[attr-defined]
    heading = html.escape(page.heading)
    body = (f'<section class="{MARKER}" id="{html.escape(page.ident)}">\n'
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
    return nodes.image(uri=uri, alt="")


def _remove_stale(app: Sphinx, current: set[str]) -> None:
    """Delete generated pages no longer wanted (only files this extension wrote)."""
    keep = {Path(app.builder.get_outfilename(name)).resolve()  # type: ignore[attr-defined]
            for name in current}
    for spec in KINDS.values():
        folder = Path(app.outdir, spec.folder)
        if not folder.is_dir():
            continue
        for path in folder.rglob("*.html"):
            if path.resolve() in keep or not path.is_file():
                continue
            try:
                if MARKER in path.read_text(encoding="utf-8", errors="replace"):
                    path.unlink()
            except OSError:
                continue


def setup(app: Sphinx) -> None:
    app.connect("env-updated", on_env_updated)
    app.connect("env-get-updated", on_get_updated)
    app.connect("doctree-resolved", on_resolved)
    app.connect("html-collect-pages", on_collect_pages)

"""An article page: its front matter as a header under the title, ``[TOC]``, and meta tags.

Reading happens in three steps. ``source-read`` reads the YAML (:mod:`.frontmatter`),
reports its problems, and hands MyST-Parser a page where the article keys are blanked
out and, when there is no H1, the title is one (line numbers unchanged). A transform
then puts the header under the title, replaces ``[TOC]`` and finds the thumbnail, and
the collector (:mod:`.catalog`) keeps what listings and meta tags need.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin

from docutils import nodes
from myst_parser.parsers.sphinx_ import MystParser
from sphinx import addnodes
from sphinx.errors import FiletypeNotFoundError
from sphinx.transforms import SphinxTransform
from sphinx.util import get_filetype, logging

from . import frontmatter
from .catalog import RECORD_KEY, ArticleCollector, ArticleRecord, articles, page_data
from .frontmatter import Problem, Reading
from .meta import ArticleMeta

if TYPE_CHECKING:
    from sphinx.application import Sphinx

logger = logging.getLogger(__name__)

#: key of ``env.current_document`` holding the page's :class:`~.frontmatter.Reading`
READING_KEY = "evaldemo_article_reading"


class evaldemo_article(nodes.container):  # noqa: N801  # docutils names nodes in lowercase
    """The article header: subtitle, byline and dates, tags, tldr, thumbnail."""


class evaldemo_tldr(nodes.container):  # noqa: N801
    """The summary box."""


class evaldemo_time(nodes.inline):  # noqa: N801
    """A date as shown; ``datetime`` holds it in ISO 8601 for HTML's ``<time>``."""


class evaldemo_tag(nodes.inline):  # noqa: N801
    """A tag (``tag`` attribute), or with ``tag=None`` the tag index; a link where there
    are tag pages (see :mod:`.tags`), plain text elsewhere."""


def warn(problem: Problem, docname: str, subtype: str = "frontmatter") -> None:
    logger.warning("%s", problem.message, location=(docname, problem.line),
                   type="evaldemo", subtype=subtype)


# --------------------------------------------------------------------------- reading


def on_source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    """Read the front matter ourselves; MyST-Parser gets the page without the article keys."""
    env = app.env
    try:
        if get_filetype(app.config.source_suffix, env.doc2path(docname)) != "markdown":
            return
    except FiletypeNotFoundError:
        return
    reading = frontmatter.read(source[0])
    if reading is None:
        return
    for problem in reading.problems:
        warn(problem, docname)
    body = "\n".join(source[0].split("\n")[reading.end + 1:])
    heading = None
    if frontmatter.first_heading_level(body) != 1:
        # without a usable title the file's name stands in (the title was warned about)
        heading = reading.meta.title or Path(docname).name
    source[0] = frontmatter.myst_source(source[0], reading, heading)
    page_data(env)[READING_KEY] = reading


class ArticleTransform(SphinxTransform):
    """Header under the title, ``[TOC]`` as a list of the page's sections, the record."""

    default_priority = 870  # after MyST-Parser's ids, before ``doctree-read`` (880)

    def apply(self, **kwargs: Any) -> None:
        reading: Reading | None = page_data(self.env).get(READING_KEY)
        if reading is None:
            return
        docname = self.env.docname
        meta = reading.meta
        section = self.document.next_node(nodes.section)
        page_title = section[0].astext() if section is not None else ""
        title = meta.title or page_title or docname

        image, image_url = self._thumbnail(reading, docname)
        tldr, summary = self._tldr(reading, docname)
        shown = None  # an index points at an image the page already shows
        if meta.thumbnail is not None and meta.thumbnail.kind != "index" and (image or image_url):
            shown = str(meta.thumbnail.value)
        header = header_nodes(meta, tldr, shown)
        if section is not None:
            section.insert(section.index(section[0]) + 1, header)
        else:
            self.document.insert(0, header)
        for paragraph in list(self.document.findall(nodes.paragraph)):
            if paragraph.astext().strip() == "[TOC]":
                paragraph.replace_self(local_contents(paragraph))
        page_data(self.env)[RECORD_KEY] = ArticleRecord(
            meta, title, summary, image, image_url, tuple(_portable(tldr))
        )

    def _thumbnail(self, reading: Reading, docname: str) -> tuple[str | None, str | None]:
        """``(file relative to the source folder, URL)`` of the thumbnail, when it is usable."""
        thumb = reading.meta.thumbnail
        line = reading.lines.get("thumbnail", 1)
        if thumb is None:
            return None, None
        if thumb.kind == "url":
            return None, str(thumb.value)
        if thumb.kind == "index":
            images = list(self.document.findall(nodes.image))
            index = int(thumb.value)
            if index >= len(images):
                have = ("the page has no image" if not images else
                        "the page has 1 image, so the index must be 0" if len(images) == 1 else
                        f"the page has {len(images)} images, so the index must be 0 to "
                        f"{len(images) - 1}")
                warn(Problem(line, f"front matter key 'thumbnail': index {index} is out of "
                             f"range: {have}", "thumbnail"), docname, "thumbnail")
                return None, None
            uri = images[index]["uri"]
            if "://" in uri or uri.startswith("data:"):
                return None, uri
            return self.env.relfn2path(uri, docname)[0], None
        relative, absolute = self.env.relfn2path(str(thumb.value), docname)
        if not Path(absolute).is_file():
            warn(Problem(line, f"front matter key 'thumbnail': the file {thumb.value!r} does "
                         f"not exist (looked for {relative!r} in the source folder)",
                         "thumbnail"), docname, "thumbnail")
            return None, None
        return relative, None

    def _tldr(self, reading: Reading, docname: str) -> tuple[list[nodes.Node], str]:
        """The tldr as inline nodes (Markdown, any raw HTML turned into text) and as text."""
        text = reading.meta.tldr
        if not text:
            return [], ""
        side = nodes.document(self.document.settings, self.document.reporter,
                              source=self.document["source"])
        MystParser().parse(text, side)
        for raw in list(side.findall(nodes.raw)):
            raw.replace_self(nodes.Text(raw.astext()))
        for message in list(side.findall(nodes.system_message)):
            message.parent.remove(message)
        # MyST-Parser adds what every page gets (html_meta tags, targets): not content
        blocks = [child for child in side.children if not isinstance(child, nodes.PreBibliographic)]
        if len(blocks) == 1 and isinstance(blocks[0], nodes.paragraph):
            inline = list(blocks[0].children)
            return inline, blocks[0].astext()
        line = reading.lines.get("tldr", 1)
        warn(Problem(line, "front matter key 'tldr': got several paragraphs or a block (a "
                     "list, a heading...); expected one paragraph of inline Markdown; it is "
                     "shown as plain text", "tldr"), docname)
        plain = " ".join(text.split())
        return [nodes.Text(plain)], plain


def _portable(inline: list[nodes.Node]) -> list[nodes.Node]:
    """A copy that can go on any other page: cross-references become their text."""
    copies = []
    for node in inline:
        copy = node.deepcopy()
        holder = nodes.inline("", "", copy)
        for xref in list(holder.findall(addnodes.pending_xref)):
            xref.replace_self(nodes.inline("", "", *xref.children))
        for ref in list(holder.findall(nodes.reference)):
            if not re.match(r"[a-z][a-z0-9+.-]*:", ref.get("refuri", ""), re.IGNORECASE):
                ref.replace_self(nodes.inline("", "", *ref.children))
        copies.extend(holder.children)
    return copies


# --------------------------------------------------------------------------- nodes


def header_nodes(meta: ArticleMeta, tldr: list[nodes.Node],
                 image_uri: str | None) -> evaldemo_article:
    """The header as builder-neutral nodes: every builder shows it, as text at least."""
    header = evaldemo_article(classes=["evaldemo-article"])
    if meta.subtitle:
        header += nodes.paragraph("", meta.subtitle, classes=["evaldemo-subtitle"])
    byline = nodes.paragraph(classes=["evaldemo-byline"])
    if meta.authors:
        byline += nodes.Text("By ")
        for index, author in enumerate(meta.authors):
            if index:
                byline += nodes.Text(" and " if index == len(meta.authors) - 1 else ", ")
            byline += nodes.inline("", author, classes=["evaldemo-author"])
    for label, when in frontmatter.dates_shown(meta.created_at, meta.updated_at):
        byline += nodes.Text(f"{' · ' if len(byline) else ''}{label} ")
        byline += evaldemo_time("", frontmatter.format_date(when), datetime=when.isoformat(),
                                classes=["evaldemo-date"])
    if len(byline):
        header += byline
    if meta.tags:
        tags = nodes.paragraph("", "Tags: ", classes=["evaldemo-tags"])
        for index, tag in enumerate(meta.tags):
            if index:
                tags += nodes.Text(", ")
            tags += evaldemo_tag("", tag, tag=tag, classes=["evaldemo-tag"])
        header += tags
    if tldr:
        box = evaldemo_tldr(classes=["evaldemo-tldr"])
        box += nodes.paragraph("", "", nodes.strong("", "TL;DR"), nodes.Text(" "), *tldr)
        header += box
    if image_uri:
        # HTML only: elsewhere the header is text. A remote image is left out where the
        # builder would have to download it (epub).
        remote = "://" in image_uri or image_uri.startswith("data:")
        only = addnodes.only(expr="format_html and not builder_epub" if remote else "format_html")
        only += nodes.image(uri=image_uri, alt="", classes=["evaldemo-thumbnail"])  # decorative
        header += only
    return header


def local_contents(marker: nodes.paragraph) -> nodes.topic:
    """The sections below the one holding ``marker`` (the whole page at its top), linked."""
    scope: nodes.Element = marker.parent
    while scope is not None and not isinstance(scope, nodes.section | nodes.document):
        scope = scope.parent
    topic = nodes.topic(classes=["contents", "local", "evaldemo-toc"])
    items = _section_list(scope)
    if items is not None:
        topic += items
    return topic


def _section_list(parent: nodes.Element) -> nodes.bullet_list | None:
    entries = []
    for section in parent.children:
        if not isinstance(section, nodes.section) or not section["ids"]:
            continue
        title = section[0]
        label = nodes.inline("", "", *(_portable(list(title.children))))
        for target in list(label.findall(nodes.target)):
            target.parent.remove(target)
        item = nodes.list_item("", nodes.paragraph("", "", nodes.reference(
            "", "", *label.children, internal=True, refid=section["ids"][0])))
        sub = _section_list(section)
        if sub is not None:
            item += sub
        entries.append(item)
    return nodes.bullet_list("", *entries) if entries else None


def visit_article_html(self: Any, node: evaldemo_article) -> None:
    self.body.append(self.starttag(node, "header"))


def depart_article_html(self: Any, node: evaldemo_article) -> None:
    self.body.append("</header>\n")


def visit_tldr_html(self: Any, node: evaldemo_tldr) -> None:
    self.body.append(self.starttag(node, "div", role="doc-abstract"))


def depart_tldr_html(self: Any, node: evaldemo_tldr) -> None:
    self.body.append("</div>\n")


def visit_time_html(self: Any, node: evaldemo_time) -> None:
    self.body.append(self.starttag(node, "time", "", datetime=node["datetime"]))


def depart_time_html(self: Any, node: evaldemo_time) -> None:
    self.body.append("</time>")


# --------------------------------------------------------------------------- meta tags

#: When sphinxext-opengraph is enabled, it writes the Open Graph tags and ours step aside.
_OPENGRAPH = "sphinxext.opengraph"


def meta_tags(record: ArticleRecord, image: str | None, *, open_graph: bool = True
              ) -> list[tuple[str, str, str]]:
    """``(attribute, name, content)`` of the page's meta tags, content as plain text."""
    meta = record.meta
    tags = []
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
    record = articles(app.env).get(pagename)
    if record is None or doctree is None:
        return
    existing = context.get("metatags", "")
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
    app.add_node(evaldemo_article, html=(visit_article_html, depart_article_html))
    app.add_node(evaldemo_tldr, html=(visit_tldr_html, depart_tldr_html))
    app.add_node(evaldemo_time, html=(visit_time_html, depart_time_html))
    app.add_node(evaldemo_tag)
    app.add_transform(ArticleTransform)
    app.add_env_collector(ArticleCollector)
    app.connect("source-read", on_source_read)
    # after sphinxext-opengraph and MyST's html_meta, so that theirs win over ours
    app.connect("html-page-context", on_page_context, priority=600)


"""An article page: its front matter as a header under the title, ``[TOC]``, private posts.

Reading happens in three steps. ``source-read`` reads the YAML (:mod:`.frontmatter`),
reports its problems, and hands MyST-Parser a page where the article keys are blanked
out and, when there is no H1, the title is one (line numbers unchanged; sections moved up
to start at ``##``, :mod:`.source`). A transform then puts the header under the title,
replaces ``[TOC]`` and finds the thumbnail, and the collector (:mod:`.catalog`) keeps what
listings, feeds and meta tags need.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docutils import nodes
from sphinx import addnodes
from sphinx.errors import FiletypeNotFoundError
from sphinx.transforms import SphinxTransform
from sphinx.util import get_filetype, logging

from . import dates, frontmatter, source, tldr
from .catalog import RECORD_KEY, ArticleRecord, page_data
from .frontmatter import Problem, Reading
from .meta import ArticleMeta
from .nodes import evaldemo_article, evaldemo_pagelink, evaldemo_time, evaldemo_tldr

if TYPE_CHECKING:
    from sphinx.application import Sphinx

logger = logging.getLogger(__name__)

#: key of ``env.current_document`` holding the page's :class:`~.frontmatter.Reading`
READING_KEY = "evaldemo_article_reading"
#: Furo shows an error banner over any table of contents without this class (its
#: documented way to say that the table is wanted)
FURO_TOC = "this-will-duplicate-information-and-it-is-still-useful-here"


def warn(problem: Problem, docname: str, subtype: str = "frontmatter") -> None:
    logger.warning("%s", problem.message, location=(docname, problem.line),
                   type="evaldemo", subtype=subtype)


def is_markdown(app: Sphinx, docname: str) -> bool:
    """A Markdown page: MyST-Parser's, or MyST-NB's ``.md`` (MyST-NB names its own file
    type, and also reads notebooks, whose front matter is not YAML text)."""
    path = app.env.doc2path(docname)
    try:
        filetype = get_filetype(app.config.source_suffix, path)
    except FiletypeNotFoundError:
        return False
    return filetype == "markdown" or (filetype == "myst-nb" and Path(path).suffix == ".md")


def is_ablog_post(app: Sphinx, docname: str, reading: Reading) -> bool:
    """Whether ABlog, when enabled, takes the page as its post (``blogpost`` in the front
    matter, or ``blog_post_pattern``): then it is ABlog's alone, never also an article, so
    no post is listed twice and ABlog gets its own keys (``tags``, ``author``) untouched."""
    if "ablog" not in app.extensions:
        return False
    return ("blogpost" in reading.passthrough
            or docname in getattr(app.config, "matched_blog_posts", ()))


# --------------------------------------------------------------------------- reading


def on_source_read(app: Sphinx, docname: str, source_text: list[str]) -> None:
    """Read the front matter ourselves; MyST-Parser gets the page without the article keys."""
    if not is_markdown(app, docname):
        return
    reading = frontmatter.read(source_text[0])
    if reading is None or is_ablog_post(app, docname, reading):
        return
    for problem in reading.problems:
        warn(problem, docname)
    body = "\n".join(source_text[0].split("\n")[reading.end + 1:])
    heading = None
    if source.first_heading_level(body) != 1:
        # without a usable title the file's name stands in (the title was warned about)
        heading = reading.meta.title or Path(docname).name
    source_text[0] = source.myst_source(source_text[0], reading, heading)
    page_data(app.env)[READING_KEY] = reading


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
        blocks = tldr.parse(meta.tldr) if meta.tldr else []
        shown = None  # an index points at an image the page already shows
        if meta.thumbnail is not None and meta.thumbnail.kind != "index" and (image or image_url):
            shown = str(meta.thumbnail.value)
        metadata = self.env.metadata[docname]
        reading_time = dates.reading_time((metadata.get("wordcount") or {}).get("minutes"))
        header = header_nodes(meta, blocks, shown, reading_time)
        if section is not None:
            section.insert(section.index(section[0]) + 1, header)
        else:
            self.document.insert(0, header)
        for paragraph in list(self.document.findall(nodes.paragraph)):
            if paragraph.astext().strip() == "[TOC]":
                paragraph.replace_self(local_contents(paragraph))
        if meta.private:
            metadata["nosearch"] = True  # Sphinx then indexes neither its title nor its words
            # no toctree includes it (see .private): no "not in any toctree" warning
            metadata["orphan"] = True
        page_data(self.env)[RECORD_KEY] = ArticleRecord(
            meta, title, tldr.plain(blocks), image, image_url, tuple(tldr.for_listing(blocks))
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


def _joined(parent: nodes.Element, parts: list[nodes.Node], last: str = ", ") -> None:
    """``a, b and c`` (or ``a, b, c`` with ``last=", "``); separators are their own spans."""
    for index, part in enumerate(parts):
        if index:
            glue = last if index == len(parts) - 1 else ", "
            parent += nodes.inline("", glue, classes=["evaldemo-sep"])
        parent += part


def header_nodes(meta: ArticleMeta, blocks: list[nodes.Element], image_uri: str | None,
                 reading_time: str | None = None) -> evaldemo_article:
    """The header as builder-neutral nodes: every builder shows it, as text at least.

    In order: the thumbnail (HTML only; the stylesheet puts it beside the lines below),
    the subtitle, one meta line (private · authors · dates · reading time), the tags, and
    the TL;DR box.
    """
    header = evaldemo_article(classes=["evaldemo-article"])
    if image_uri:
        # HTML only: elsewhere the header is text. A remote image is left out where the
        # builder would have to download it (epub).
        header["classes"].append("evaldemo-has-thumbnail")
        remote = "://" in image_uri or image_uri.startswith("data:")
        only = addnodes.only(expr="format_html and not builder_epub" if remote else "format_html")
        only += nodes.container("", nodes.image(uri=image_uri, alt="",  # decorative
                                                classes=["evaldemo-thumbnail"]),
                                classes=["evaldemo-article-thumb"])
        header += only
    if meta.subtitle:
        header += nodes.paragraph("", meta.subtitle, classes=["evaldemo-subtitle"])
    line = nodes.paragraph(classes=["evaldemo-meta"])
    parts: list[nodes.Element] = []
    if meta.private:
        parts.append(nodes.inline("", "private", classes=["evaldemo-private"]))
    if meta.authors:
        byline = nodes.inline("", "By ", classes=["evaldemo-authors"])
        _joined(byline, [evaldemo_pagelink("", author, kind="authors", name=author, quiet=True,
                                           classes=["evaldemo-author"])
                         for author in meta.authors], last=" and ")
        parts.append(byline)
    for label, when in dates.dates_shown(meta.created_at, meta.updated_at):
        parts.append(nodes.inline("", f"{label} ", evaldemo_time(
            "", dates.format_date(when), datetime=when.isoformat(), classes=["evaldemo-date"]),
            classes=[f"evaldemo-{label}"]))
    if reading_time:
        parts.append(nodes.inline("", reading_time, classes=["evaldemo-reading-time"]))
    for index, part in enumerate(parts):
        if index:
            line += nodes.inline("", " · ", classes=["evaldemo-sep"])
        line += part
    if parts:
        header += line
    if meta.tags:
        tags = nodes.paragraph("", "", nodes.inline("", "Tags: ", classes=["evaldemo-label"]),
                               classes=["evaldemo-tags"])
        _joined(tags, [evaldemo_pagelink("", tag, kind="tags", name=tag, quiet=True,
                                         classes=["evaldemo-tag"]) for tag in meta.tags])
        header += tags
    if blocks:
        box = evaldemo_tldr(classes=["evaldemo-tldr"])
        box += nodes.paragraph("", "", nodes.strong("", "TL;DR"), classes=["evaldemo-tldr-label"])
        box.extend(blocks)
        header += box
    return header


def local_contents(marker: nodes.paragraph) -> nodes.topic:
    """Every section of the post, linked, wherever ``marker`` stands (the Knowledge Repo
    lists all of the post's headings, not those below the marker): the sections under the
    page's title, or the page's own sections when it has several at the top."""
    scope: nodes.Element = marker
    while scope.parent is not None:
        scope = scope.parent
    tops = [child for child in scope.children if isinstance(child, nodes.section)]
    if len(tops) == 1:
        scope = tops[0]
    topic = nodes.topic(classes=["contents", "local", "evaldemo-toc", FURO_TOC])
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


def setup(app: Sphinx) -> None:
    app.add_transform(ArticleTransform)
    app.connect("source-read", on_source_read)

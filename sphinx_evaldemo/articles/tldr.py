"""The tldr: Markdown (one line, or a block as the Knowledge Repo writes it) -> safe nodes.

The tldr is also the meta description and appears in listings and feeds, where markup
from front matter must not run. So it is not handed to MyST-Parser (a directive or a role
in it would run, once per page that lists it): it is parsed as CommonMark, and only what
a summary needs becomes nodes. Paragraphs, lists, quotes, code, emphasis and links with a
web address; raw HTML is shown as text; headings become bold paragraphs; anything else
(images, relative links) becomes its text. Pure: docutils nodes, no Sphinx.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from docutils import nodes
from markdown_it import MarkdownIt
from markdown_it.token import Token

#: links kept as links; any other target (``javascript:``, a page name) becomes text
SAFE_LINK = re.compile(r"(?:https?://|mailto:)", re.IGNORECASE)
#: about how long a meta description may be
SUMMARY_LIMIT = 300
#: the class of raw HTML shown as text
HTML = "evaldemo-tldr-html"

_BLOCKS: dict[str, type[nodes.Element]] = {
    "paragraph_open": nodes.paragraph,
    "bullet_list_open": nodes.bullet_list,
    "ordered_list_open": nodes.enumerated_list,
    "list_item_open": nodes.list_item,
    "blockquote_open": nodes.block_quote,
}
_INLINE: dict[str, type[nodes.Element]] = {
    "em_open": nodes.emphasis,
    "strong_open": nodes.strong,
}


def parse(markdown: str) -> list[nodes.Element]:
    """The tldr's blocks as docutils nodes; every string in them is text, never markup."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    root = nodes.container()
    stack: list[nodes.Element] = [root]
    for token in tokens:
        kind = token.type
        if kind in _BLOCKS:
            node = _BLOCKS[kind]()
            if kind == "bullet_list_open":
                node["bullet"] = token.markup or "-"
            elif kind == "ordered_list_open":
                node["enumtype"] = "arabic"
                start = token.attrGet("start")
                if isinstance(start, int) and start != 1:
                    node["start"] = start
            stack[-1] += node
            stack.append(node)
        elif kind.endswith("_close") and kind.replace("_close", "_open") in _BLOCKS:
            stack.pop()
        elif kind == "heading_open":
            heading = nodes.paragraph(classes=["evaldemo-tldr-heading"])
            stack[-1] += heading
            stack.append(nodes.strong())
            heading += stack[-1]
        elif kind == "heading_close":
            stack.pop()
        elif kind == "inline":
            stack[-1].extend(_inline(token.children or []))
        elif kind in ("fence", "code_block"):
            code = token.content.rstrip("\n")
            # shown as written, never highlighted (an unknown language would be a warning)
            # and never run (``{evaldemo}`` in a tldr is code to show)
            stack[-1] += nodes.literal_block(code, code, language="text")
        elif kind == "html_block":
            raw = token.content.rstrip("\n")
            stack[-1] += nodes.literal_block(raw, raw, classes=[HTML], language="html")
    return list(root.children)  # type: ignore[arg-type]  # only Elements were added


def _inline(tokens: Sequence[Token]) -> list[nodes.Node]:
    holder = nodes.inline()
    stack: list[nodes.Element] = [holder]
    for token in tokens:
        kind = token.type
        if kind in _INLINE:
            node = _INLINE[kind]()
            stack[-1] += node
            stack.append(node)
        elif kind == "link_open":
            href = str(token.attrGet("href") or "")
            link: nodes.Element = (nodes.reference("", "", refuri=href)
                                   if SAFE_LINK.match(href) else nodes.inline())
            stack[-1] += link
            stack.append(link)
        elif kind in ("em_close", "strong_close", "link_close"):
            if len(stack) > 1:
                stack.pop()
        elif kind == "code_inline":
            stack[-1] += nodes.literal(token.content, token.content)
        elif kind in ("softbreak", "hardbreak"):
            stack[-1] += nodes.Text("\n")
        elif kind == "image":
            stack[-1] += nodes.Text(token.content)
        elif kind == "html_inline":
            stack[-1] += nodes.inline(token.content, token.content, classes=[HTML])
        else:  # text, and anything else: its text, as text
            stack[-1] += nodes.Text(token.content)
    return list(holder.children)


def plain(blocks: Sequence[nodes.Node], limit: int = SUMMARY_LIMIT) -> str:
    """The tldr as one line of text (for meta descriptions and feeds), cut near ``limit``
    characters at a word boundary, with ``…`` where it was cut. It is the text the box
    shows: raw HTML, shown as text there, is kept as the characters it shows (the meta
    tag's writer escapes them)."""
    text = " ".join(" ".join(_words(block) for block in blocks).split())
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[: limit + 1] else text[:limit]
    return cut.rstrip(" ,;:.-\u2013\u2014") + "…"


def _words(node: nodes.Node) -> str:
    if isinstance(node, nodes.Text):
        return node.astext()
    assert isinstance(node, nodes.Element)
    glue = " " if isinstance(node, nodes.Sequential | nodes.list_item | nodes.Structural) else ""
    return glue.join(_words(child) for child in node.children) + " " * bool(glue)


def for_listing(blocks: Sequence[nodes.Node]) -> list[nodes.Node]:
    """The blocks a listing card shows: the prose, without code and raw HTML blocks."""
    return [block.deepcopy() for block in blocks if not isinstance(block, nodes.literal_block)]

"""The article page as MyST-Parser reads it: blanked front matter, the title as H1, and
sections shifted so that they start at ``##`` under it (same line numbers throughout)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.colon_fence import colon_fence_plugin

if TYPE_CHECKING:
    from .frontmatter import Reading

_ATX = re.compile(r"(?P<indent> {0,3})(?P<marks>#{1,6})(?=[ \t]|$)")


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").use(colon_fence_plugin)


def headings(markdown: str) -> list[tuple[int, int, bool]]:
    """``(level, 0-based line, is ATX)`` of each top-level heading (not in code, quotes,
    lists or directives), in order."""
    found = []
    for token in _parser().parse(markdown):
        if token.type == "heading_open" and token.level == 0 and token.map is not None:
            found.append((int(token.tag[1:]), token.map[0], token.markup.startswith("#")))
    return found


def first_heading_level(markdown: str) -> int | None:
    """The level of the page's first heading (1 for ``#``), or None when it has none."""
    found = headings(markdown)
    return found[0][0] if found else None


def shift_sections(markdown: str) -> str:
    """Sections that start below ``##`` (a Knowledge Repo post starts at ``###``) moved up so
    that the first one is ``##``; none goes above ``##``, so a later ``##`` stays as it is.

    The page's H1, if it has one, is left alone; so is a real jump between later sections
    (``##`` then ``####``), which MyST-Parser reports as it does on any page.
    """
    found = [h for h in headings(markdown) if h[0] > 1]
    if not found or found[0][0] <= 2:
        return markdown
    shift = found[0][0] - 2
    lines = markdown.split("\n")
    for level, line, atx in found:
        match = _ATX.match(lines[line]) if atx else None
        if match is None:
            continue
        new = max(2, level - shift)
        lines[line] = match["indent"] + "#" * new + lines[line][match.end():]
    return "\n".join(lines)


def escape_markdown(text: str) -> str:
    """Backslash every ASCII punctuation mark, so the text reads as text and nothing else."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def myst_source(source: str, reading: Reading, heading: str | None) -> str:
    """The page as MyST-Parser should see it, with every line after the header in place.

    MyST-Parser reads front matter with PyYAML's safe loader, which drops the whole
    header on one bad date, and it would show article keys in the docinfo. So it sees
    only its own keys and the unknown ones (as one line of YAML, for ``env.metadata``),
    and, when ``heading`` is given, that title as an H1 on the closing fence's line. The
    sections below are shifted to start at ``##`` (:func:`shift_sections`).
    """
    lines = source.split("\n")
    end = reading.end
    head: list[str] = []
    room = end if heading is not None else end + 1
    if reading.passthrough and room >= 3:
        try:
            flow = yaml.safe_dump(reading.passthrough, default_flow_style=True, width=2**30,
                                  allow_unicode=True, sort_keys=False).strip()
        except yaml.YAMLError:
            flow = ""
        if flow and "\n" not in flow:
            head = ["---", flow, "---"]
    head += [""] * (end + 1 - len(head))
    if heading is not None:
        head[end] = "# " + escape_markdown(heading)
    if len(lines) > end + 1:
        head += shift_sections("\n".join(lines[end + 1:])).split("\n")
    return "\n".join(head)

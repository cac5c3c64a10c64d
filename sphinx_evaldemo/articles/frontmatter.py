"""Knowledge-Repo front matter: YAML text -> a checked ArticleMeta, with each problem's line.

Everything here is pure (no Sphinx): :mod:`.header` calls it from ``source-read``, and
:mod:`.private` before reading, to find private posts.

PyYAML's safe loader gives up on the whole document when one date does not exist
(``2023-02-30``), so this module reads the YAML with a loader that leaves timestamps as
strings, and checks each key on its own: one bad value costs that key and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from .dates import day, format_date, instant, parse_when
from .meta import ArticleMeta, Thumbnail

#: Keys an article must have.
REQUIRED = ("title", "authors", "tldr", "created_at")
#: Keys that are shown; a page whose front matter has any of them is an article.
ARTICLE_KEYS = ("title", "subtitle", "authors", "tags", "created_at", "updated_at", "tldr",
                "thumbnail")
#: Knowledge-Repo keys that are read and checked but do not make a page an article; they
#: are also handed on to MyST-Parser, so they stay in the page's metadata.
KR_KEYS = ("private", "allowed_groups", "path")
#: Front-matter keys that configure MyST-Parser: handed on to it untouched.
MYST_KEYS = ("myst", "mystnb", "substitutions", "html_meta")

_WHEN = "a date (YYYY-MM-DD) or a date and time (YYYY-MM-DD HH:MM[:SS][+HH:MM])"
EXPECTED = {
    "title": "a string",
    "subtitle": "a string",
    "authors": "a name or a list of names",
    "tags": "a list of strings",
    "created_at": _WHEN,
    "updated_at": _WHEN,
    "tldr": "a string of Markdown (one line, or a block written `tldr: |`)",
    "thumbnail": "a path relative to the page, a URL, or a 0-based index into the page's images",
    "private": "true or false",
    "allowed_groups": "a list of group names",
    "path": "a string",
}

_NULL = "tag:yaml.org,2002:null"
_INT = "tag:yaml.org,2002:int"
_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BOOL = "tag:yaml.org,2002:bool"
_YAML_ERRORS = (yaml.YAMLError, ValueError, TypeError, RecursionError)
_FENCE = re.compile(r"-{3,}[ \t]*$")
_END = re.compile(r"(?:-{3,}|\.\.\.)[ \t]*$")
_URL = re.compile(r"(?:https?:|data:|//)", re.IGNORECASE)


class _Loader(yaml.SafeLoader):
    """The safe loader, minus timestamps: dates arrive as strings and are checked here."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


_Loader.add_constructor(_TIMESTAMP, _timestamp_as_text)  # an explicit !!timestamp too


#: ``(key, line of the key, value node, file line of the node's YAML line 0)``
_Pair = tuple[str, int, yaml.Node, int]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in the front matter, at a 1-based line of the page's file."""

    line: int
    message: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """What the front matter of one page gave: the header, its problems, where things are."""

    meta: ArticleMeta
    problems: tuple[Problem, ...] = ()
    #: 1-based file line of each key that was present
    lines: dict[str, int] = field(default_factory=dict)
    #: 0-based index of the line closing the front matter
    end: int = 0
    #: keys MyST-Parser should still see: its own, and the ones this extension does not show
    passthrough: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def read(source: str) -> Reading | None:
    """Read an article's front matter; None when the page has none, or is not an article."""
    lines = source.split("\n")
    if not lines or not _FENCE.match(lines[0]):
        return None
    end = next((i for i in range(1, len(lines)) if _END.match(lines[i])), None)
    if end is None:
        return None
    pairs, problems = _compose("\n".join(lines[1:end]) + "\n", first_line=2)
    if pairs is None:
        return None  # not a mapping: not an article, MyST-Parser reports it
    present = {pair[0] for pair in pairs}
    guessed = _keys_in(lines[1:end])
    if not (present | guessed) & set(ARTICLE_KEYS):
        return None

    values: dict[str, Any] = {}
    where: dict[str, int] = {}
    passthrough: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, line, node, base in pairs:
        if key in where:
            problems.append(Problem(line, f"front matter key {key!r} appears twice (lines "
                                    f"{where[key]} and {line}); the last one is used", key))
        where[key] = line
        if key in ARTICLE_KEYS or key in KR_KEYS:
            value, found = _COERCE[key](key, node, line, base)
            problems.extend(found)
            values.pop(key, None)
            if value is not None:
                values[key] = value
            if key in ARTICLE_KEYS:
                continue  # the Knowledge Repo's own keys are also kept as they are, below
        try:
            value = _construct(node)
        except _YAML_ERRORS as error:
            reason = getattr(error, "problem", None) or str(error).splitlines()[0]
            problems.append(Problem(line, f"front matter key {key!r} could not be read "
                                    f"({reason}); it is left out", key))
            continue
        passthrough[key] = value
        if key not in MYST_KEYS and key not in KR_KEYS:
            extra[key] = value

    for key in REQUIRED:
        if key not in where and key not in guessed:
            problems.append(Problem(1, f"front matter: required key {key!r} is missing; "
                                    f"expected {EXPECTED[key]}", key))
    meta = ArticleMeta(**values, extra=extra)
    problems.extend(_check_order(meta, where))
    problems.sort(key=lambda p: p.line)
    return Reading(meta, tuple(problems), where, end, passthrough)


def _compose(text: str, first_line: int) -> tuple[list[_Pair] | None, list[Problem]]:
    """Each top-level key with its value node; salvage key by key on a YAML error.

    None when the YAML is a list or a scalar: then the page is not an article.
    """
    try:
        root = _single_node(text)
    except _YAML_ERRORS:
        return _compose_by_key(text, first_line)
    if root is None:
        return [], []
    if not isinstance(root, yaml.MappingNode):
        return None, []
    return _pairs(root, first_line)


def _compose_by_key(text: str, first_line: int) -> tuple[list[_Pair], list[Problem]]:
    """Read each top-level key's lines on their own, so one broken key loses only itself."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line[:1] not in ("", " ", "\t", "#", "-")]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    pairs: list[_Pair] = []
    problems: list[Problem] = []
    for start, stop in zip(starts, [*starts[1:], len(lines)], strict=True):
        chunk = "\n".join(lines[start:stop]) + "\n"
        if not chunk.strip() or all(not ln.strip() or ln.lstrip().startswith("#")
                                    for ln in lines[start:stop]):
            continue
        name = re.match(r"\s*([^:#]+?)\s*:", lines[start])
        about = f" (key {name.group(1)!r}; the other keys are still read)" if name else ""
        try:
            node = _single_node(chunk)
        except _YAML_ERRORS as error:
            mark = getattr(error, "problem_mark", None)
            offset = min(mark.line, stop - start - 1) if mark is not None else 0
            reason = getattr(error, "problem", None) or str(error)
            problems.append(Problem(first_line + start + offset,
                                    f"front matter is not valid YAML: {reason}{about}",
                                    name.group(1) if name else None))
            continue
        if isinstance(node, yaml.MappingNode):
            found, more = _pairs(node, first_line + start)
            pairs.extend(found)
            problems.extend(more)
        elif node is not None:
            problems.append(Problem(first_line + start,
                                    "front matter is not valid YAML: expected 'key: value'"))
    return pairs, problems


def _pairs(root: yaml.MappingNode, first_line: int) -> tuple[list[_Pair], list[Problem]]:
    pairs = []
    problems = []
    for key_node, value_node in root.value:
        line = first_line + key_node.start_mark.line
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _NULL:
            problems.append(Problem(line, "front matter keys must be names; this one is "
                                    f"{_kind(key_node)}"))
            continue
        pairs.append((str(key_node.value), line, value_node, first_line))
    return pairs, problems


def _keys_in(lines: list[str]) -> set[str]:
    """Top-level keys as written, even where the YAML does not parse."""
    return {m.group(1) for line in lines if (m := re.match(r"([A-Za-z_][\w-]*)\s*:", line))}


def _single_node(text: str) -> yaml.Node | None:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _construct(node: yaml.Node) -> Any:
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if node.tag == _NULL:
        return "an empty value"
    return repr(node.value)


# --------------------------------------------------------------------------- coercion

_Coerced = tuple[Any, list[Problem]]


def _wrong(key: str, line: int, got: str) -> list[Problem]:
    return [Problem(line, f"front matter key {key!r}: got {got}; expected {EXPECTED[key]}", key)]


def _text(node: yaml.Node) -> str | None:
    """A scalar's text as written (``1984``, ``on``, ``3.10`` stay as typed), or None."""
    if isinstance(node, yaml.ScalarNode) and node.tag != _NULL:
        return str(node.value).strip() or None
    return None


def _one_line(key: str, node: yaml.Node, line: int, base: int) -> _Coerced:
    text = _text(node)
    if text is None:
        return None, _wrong(key, line, _kind(node))
    return " ".join(text.split()), []


def _paragraph(key: str, node: yaml.Node, line: int, base: int) -> _Coerced:
    text = _text(node)
    if text is None:
        return None, _wrong(key, line, _kind(node))
    return text, []


def _names(key: str, node: yaml.Node, line: int, base: int) -> _Coerced:
    """A list of strings; a single string is a list of one. Bad items are dropped, and named
    in one warning."""
    if isinstance(node, yaml.ScalarNode):
        items = [node]
    elif isinstance(node, yaml.SequenceNode):
        items = list(node.value)
    else:
        return None, _wrong(key, line, _kind(node))
    names: list[str] = []
    dropped: list[tuple[int, yaml.Node]] = []
    for index, item in enumerate(items, start=1):
        text = _text(item)
        if text is None:
            dropped.append((index, item))
        elif (text := " ".join(text.split())) not in names:
            names.append(text)
    problems = []
    if dropped:  # one warning for the key, however many items it lost
        first = dropped[0][1]
        if not isinstance(node, yaml.SequenceNode):
            what = f"got {_kind(first)}"
        elif len(dropped) == 1:
            what = f"item {dropped[0][0]} is {_kind(first)}, which was left out"
        else:
            numbers = ", ".join(str(index) for index, _ in dropped)
            what = f"items {numbers} are not strings and were left out"
        # an alias's node may sit above the key: never point before the key's line
        problems.append(Problem(max(line, base + first.start_mark.line),
                                f"front matter key {key!r}: {what}; expected {EXPECTED[key]}",
                                key))
    if not names and key == "authors" and not problems:
        problems.extend(_wrong(key, line, "an empty list"))
    return (tuple(names) if names else None), problems


def _when(key: str, node: yaml.Node, line: int, base: int) -> _Coerced:
    text = _text(node)
    if text is None:
        return None, _wrong(key, line, _kind(node))
    try:
        return parse_when(text), []
    except ValueError as error:
        return None, _wrong(key, line, f"{text!r}, which is not a valid date ({error})")


def _thumbnail(key: str, node: yaml.Node, line: int, base: int) -> _Coerced:
    text = _text(node)
    if text is None:
        return None, _wrong(key, line, _kind(node))
    if node.tag == _INT or (node.tag == _STR and text.isascii() and text.isdigit()):  # Knowledge Repo: "1" too
        index = int(_construct(node))
        if index < 0:
            return None, _wrong(key, line, f"the index {index}")
        return Thumbnail("index", index), []
    if node.tag != _STR:
        return None, _wrong(key, line, _kind(node))
    if _URL.match(text):
        return Thumbnail("url", text), []
    return Thumbnail("path", text), []


def _flag(key: str, node: yaml.Node, line: int, base: int) -> _Coerced:
    if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL:
        return bool(_construct(node)), []
    return None, _wrong(key, line, _kind(node))


_COERCE = {
    "private": _flag,
    "allowed_groups": _names,
    "path": _one_line,
    "title": _one_line,
    "subtitle": _one_line,
    "authors": _names,
    "tags": _names,
    "created_at": _when,
    "updated_at": _when,
    "tldr": _paragraph,
    "thumbnail": _thumbnail,
}


def _check_order(meta: ArticleMeta, where: dict[str, int]) -> list[Problem]:
    created, updated = meta.created_at, meta.updated_at
    if created is None or updated is None:
        return []
    if isinstance(created, datetime) and isinstance(updated, datetime):
        earlier = instant(updated) < instant(created)
    else:
        earlier = day(updated) < day(created)
    if not earlier:
        return []
    return [Problem(where["updated_at"], f"front matter key 'updated_at': {format_date(updated)} "
                    f"is before created_at ({format_date(created)})", "updated_at")]



"""Tags and authors as page names: which spellings are one name, and a safe file for each.

Pure functions. Two spellings are the same tag (or author) when they differ only in case,
in Unicode compatibility forms, or in how words are separated (spaces, ``-``, ``_``):
``Deep Learning`` and ``deep-learning``. Any other difference makes another page:
``C``, ``C++`` and ``C#`` are three tags.

A page's file name is the name itself when that is already a safe, readable file name
(letters and digits of any script joined by ``-``); otherwise (punctuation, a reserved name
such as ``index``, a very long name) it is a readable part, ``_`` and a hash of the name.
A plain name never contains ``_``, so the two kinds cannot meet, and the file name of a
name never depends on the other names in the project.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

#: names that a generated page must not take: the folder's own index, and names that are
#: devices on Windows
RESERVED = frozenset(
    {"index", "genindex", "search", "con", "prn", "aux", "nul"}
    | {f"{d}{n}" for d in ("com", "lpt") for n in range(10)}
)
#: the longest plain file name, in UTF-8 bytes (file systems allow 255)
MAX_BYTES = 80
_SEPARATORS = re.compile(r"[\s_-]+")
_PLAIN = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_HASH = 10


def key(name: str) -> str:
    """What decides whether two spellings are one name: case and separators do not count."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return _SEPARATORS.sub("-", folded).strip("-") or folded


def file_name(name: str) -> str:
    """A safe, stable file name (without suffix) for ``name``: distinct keys never share one."""
    folded = key(name)
    if (_PLAIN.fullmatch(folded) and folded not in RESERVED
            and len(folded.encode()) <= MAX_BYTES):
        return folded
    readable = re.sub(r"[\W_]+", "-", folded).strip("-")
    readable = _cut(readable, MAX_BYTES - _HASH - 1).strip("-") or "tag"
    digest = hashlib.sha256(folded.encode()).hexdigest()[:_HASH]
    return f"{readable}_{digest}"


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, never half a character."""
    return text.encode()[:limit].decode(errors="ignore")


@dataclass(frozen=True, slots=True)
class Group:
    """One tag or author: the spelling shown, its file name, and its articles (newest first)."""

    label: str
    file: str
    docnames: tuple[str, ...]


def groups(ordered: Iterable[tuple[str, Iterable[str]]]) -> dict[str, Group]:
    """``{key: Group}`` sorted by label, from ``(docname, names)`` in the order to list them.

    The label is the spelling most articles use (ties: the first in sort order).
    """
    spellings: dict[str, dict[str, int]] = {}
    docs: dict[str, list[str]] = {}
    for docname, names in ordered:
        for name in names:
            k = key(name)
            counts = spellings.setdefault(k, {})
            counts[name] = counts.get(name, 0) + 1
            if docname not in docs.setdefault(k, []):
                docs[k].append(docname)
    found = {}
    for k, counts in spellings.items():
        label = min(counts, key=lambda t: (-counts[t], t))
        found[k] = Group(label, file_name(label), tuple(docs[k]))
    return dict(sorted(found.items(), key=lambda item: (item[1].label.casefold(), item[0])))



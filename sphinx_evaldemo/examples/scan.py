"""The directive found in sources without parsing them, to decide what to start early.

A guess for scheduling only (a directive in a code sample counts too): whether a
source tree has any example, and about how many a page has.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: How a directive opens in MyST (any fence) and in reStructuredText.
DIRECTIVE = re.compile(r"\{evaldemo\}|\.\. evaldemo::")
#: Source files looked at for a directive before giving up (a huge tree: no head start).
LOOK_AT = 2000
_SUFFIXES = (".md", ".rst", ".txt", ".ipynb")
_SKIP = frozenset({"_build", "node_modules", "__pycache__", "venv"})


def _text(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def directives_in(path: str | os.PathLike[str]) -> int:
    """How many times the source file at ``path`` opens the directive."""
    return len(DIRECTIVE.findall(_text(path)))


def examples_in(srcdir: str | os.PathLike[str], limit: int = LOOK_AT) -> bool:
    """Whether some source file under ``srcdir`` opens the directive (stops at the first)."""
    looked = 0
    for folder, dirs, files in os.walk(srcdir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP)
        for name in files:
            if not name.endswith(_SUFFIXES):
                continue
            looked += 1
            if looked > limit:
                return False
            if DIRECTIVE.search(_text(Path(folder, name))):
                return True
    return False

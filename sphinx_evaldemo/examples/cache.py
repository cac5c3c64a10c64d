"""Content-addressed store for example results: one file per result, written atomically."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from .. import __version__
from .model import ExampleResult


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


@functools.cache
def fingerprint() -> str:
    """What besides the request decides a result: the versions that run it."""
    return " ".join(
        [
            f"python={sys.version.split()[0]}",
            f"torch={_version('torch')}",
            f"numpy={_version('numpy')}",
            f"sphinx-evaldemo={__version__}",
        ]
    )


class Cache:
    """Results by key under ``root``; unreadable or foreign files count as misses."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> ExampleResult | None:
        try:
            return ExampleResult.from_json(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, key: str, result: ExampleResult) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(result.to_json())
            Path(temporary).replace(path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def has(self, key: str) -> bool:
        """Cheap: whether a file exists (it may still turn out unreadable in :meth:`get`)."""
        return self._path(key).is_file()

    def empty(self) -> bool:
        return next(self.root.glob("??/*.json"), None) is None

    def prune(self, keep: set[str]) -> int:
        """Remove every result whose key is not in ``keep``; return how many went."""
        removed = 0
        if not self.root.is_dir():
            return 0
        stale = time.time() - 600  # another build may be writing a newer temporary file
        temporary = [p for p in self.root.glob("??/.tmp-*") if _mtime(p) < stale]
        for path in [*self.root.glob("??/*.json"), *temporary]:
            if path.stem not in keep:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")

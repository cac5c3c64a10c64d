"""The result cache: one file per key, atomic writes, misses for anything unreadable."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

import sphinx_evaldemo
from sphinx_evaldemo.examples.cache import Cache, fingerprint
from sphinx_evaldemo.examples.model import ExampleResult, Failure, Segment

KEY = "ab" + "0" * 62
OTHER = "cd" + "1" * 62
RESULT = ExampleResult(segments=(Segment("", "hello\n"),), seconds=0.5)


def test_put_then_get(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put(KEY, RESULT)
    assert cache.get(KEY) == RESULT
    assert cache.get(OTHER) is None


def test_failures_are_stored_like_results(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    failed = ExampleResult(failure=Failure("timeout", "timed out after 1 s"))
    cache.put(KEY, failed)
    assert cache.get(KEY) == failed


def test_put_replaces_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put(KEY, RESULT)
    newer = ExampleResult(segments=(Segment("", "newer\n"),))
    cache.put(KEY, newer)
    assert cache.get(KEY) == newer
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{KEY}.json"]


@pytest.mark.parametrize("content", ["", "{", "[]", '{"runs": 5}', '{"failure": {"kind": 1}}', "\x00\x01"])
def test_unreadable_files_are_misses(tmp_path: Path, content: str) -> None:
    cache = Cache(tmp_path)
    cache.put(KEY, RESULT)
    next(tmp_path.rglob(f"{KEY}.json")).write_text(content, encoding="utf-8")
    assert cache.get(KEY) is None


def test_prune_keeps_what_is_used(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put(KEY, RESULT)
    cache.put(OTHER, RESULT)
    assert cache.prune(keep={KEY}) == 1
    assert cache.get(KEY) == RESULT
    assert cache.get(OTHER) is None


def test_fingerprint_names_the_versions_that_decide_results() -> None:
    text = fingerprint()
    assert f"torch={metadata.version('torch')}" in text
    assert f"numpy={metadata.version('numpy')}" in text
    assert f"sphinx-evaldemo={sphinx_evaldemo.__version__}" in text
    assert "python=" in text
    assert fingerprint() == text

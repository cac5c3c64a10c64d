"""Progress in Sphinx's own style: a long example is named again with its elapsed time
while the build waits on it; results from the cache are never called "running"; every
build that reads or writes a page ends with one closing line, in correct English."""

from __future__ import annotations

import itertools
import re

import pytest
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples.core import STILL_EVERY, STILL_FIRST
from tests.conftest import ROOTS, Build
from tests.helpers import line_of

SLEEP = 12  # seconds the example sleeps
LINE = line_of((ROOTS / "test-progress" / "index.md").read_text(encoding="utf-8"), "```{evaldemo}")
_STILL = re.compile(r"evaldemo: still running index\.md:(\d+) \((\d+) s\)")
_CLOSING = re.compile(r"^evaldemo: .*$", re.MULTILINE)


def _status(app: SphinxTestApp) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", app.status.getvalue())


def _closing(app: SphinxTestApp) -> list[str]:
    return [line for line in _CLOSING.findall(_status(app)) if "still running" not in line]


@pytest.fixture(scope="module")
def first(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("progress", "text", copy="progress")


def test_a_long_example_is_named_with_its_elapsed_time_before_it_ends(first: SphinxTestApp) -> None:
    found = [(int(line), int(seconds)) for line, seconds in _STILL.findall(_status(first))]
    assert found, _status(first)
    assert {line for line, _ in found} == {LINE}
    # the first naming comes once it has been out a few seconds, before the example ends
    assert STILL_FIRST <= found[0][1] < SLEEP
    # at most every STILL_EVERY seconds: a 12 s run is named at most twice
    assert len(found) <= 1 + SLEEP // STILL_EVERY
    assert all(b - a >= STILL_EVERY for (_, a), (_, b) in itertools.pairwise(found))


def test_the_closing_line_says_one_example_in_the_singular(first: SphinxTestApp) -> None:
    (closing,) = _closing(first)
    assert closing.startswith("evaldemo: 1 example ran, 0 came from the cache, 0 failed, "
                              "1 worker process started ("), closing
    assert "examples ran" not in closing and "1 workers" not in closing


def test_a_rebuild_with_no_change_still_ends_with_the_closing_line(
    first: SphinxTestApp, sphinx_build: Build,
) -> None:
    again = sphinx_build("progress", "text", copy="progress")
    assert "0 added, 0 changed, 0 removed" in _status(again)  # nothing was read again
    (closing,) = _closing(again)
    assert re.fullmatch(r"evaldemo: 0 examples ran, 1 came from the cache, 0 failed \(\d+\.\d s\)",
                        closing), closing


def test_results_from_the_cache_are_never_called_running(
    first: SphinxTestApp, sphinx_build: Build,
) -> None:
    reread = sphinx_build("progress", "text", copy="progress", freshenv=True)
    status = _status(reread)
    assert "running" not in status, status
    assert "evaldemo: 0 examples ran, 1 came from the cache" in status

"""Limits: output over ``evaldemo_max_output`` is cut, an example that allocates without
bound is stopped by ``evaldemo_memory_limit``, and a worker killed mid-example is
replaced. Each is one warning at the right line, and the next example still runs.
The root sets ``evaldemo_max_output = 500``, ``evaldemo_memory_limit = 512`` and one worker.
"""

from __future__ import annotations

import re

import pytest
import torch
from sphinx.testing.util import SphinxTestApp
from torch import nn

from tests.conftest import ROOTS, Build
from tests.helpers import Warned, flat, line_of, outputs, sections, seed_all, titles, warnings

SOURCE = (ROOTS / "test-limits" / "index.md").read_text(encoding="utf-8")
FENCE = "```{evaldemo}"
LIMIT = 500
PRINTED = "".join(f"line {i:03d}\n" for i in range(300))
MARKER = re.compile(r"^\[\.\.\. output cut at this point: (\d+) characters omitted \.\.\.\]$", re.M)


@pytest.fixture(scope="module")
def app(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("limits", "text")


@pytest.fixture(scope="module")
def page(app: SphinxTestApp) -> dict[str, str]:
    return sections((app.outdir / "index.txt").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def warned(app: SphinxTestApp) -> dict[str, Warned]:
    """The warnings by subtype; each subtype exactly once."""
    found = warnings(app.warning.getvalue())
    by_type = {w.type: w for w in found}
    assert len(by_type) == len(found) == 3, found
    return by_type


def _good_eval() -> str:
    """The eval output of the good examples, run directly: seed, model, input, reseed."""
    seed_all(0)
    net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    x = torch.randn(2, 3)
    seed_all(0)
    return repr(net.eval()(x))


def test_build_finishes_and_counts(app: SphinxTestApp) -> None:
    assert app.statuscode == 0
    # the kill costs only that example's process: the warm parent forks the next one
    assert "evaldemo: 5 examples ran, 0 came from the cache, 3 failed, 1 worker process started" in (
        app.status.getvalue()
    )


def test_long_output_keeps_head_and_tail_and_says_how_much_was_cut(page: dict[str, str]) -> None:
    (shown,) = outputs(page["output"], "output")
    (count,) = MARKER.findall(shown)
    head, tail = MARKER.split(shown)[0], MARKER.split(shown)[2]
    head, tail = head.removesuffix("\n"), tail.removeprefix("\n")
    assert int(count) == len(PRINTED) - LIMIT == 2200
    assert PRINTED.startswith(head)
    assert PRINTED.rstrip("\n").endswith(tail)
    assert head.startswith("line 000\nline 001")
    assert tail.endswith("line 298\nline 299")
    # what is shown and what was cut add up to what was printed
    assert len(head) + int(count) + len(tail) + 1 == len(PRINTED)


def test_long_output_warns_at_the_directive(warned: dict[str, Warned]) -> None:
    warning = warned["evaldemo.output"]
    assert warning.file == "index.md"
    assert warning.line == line_of(SOURCE, FENCE, after="## output")
    assert f"output cut at {LIMIT} characters" in warning.message
    assert "evaldemo_max_output" in warning.message


def test_unbounded_allocation_is_stopped_at_its_line(warned: dict[str, Warned]) -> None:
    warning = warned["evaldemo.memory"]
    assert warning.file == "index.md"
    assert warning.line == line_of(SOURCE, "x.append(bytearray(10**8))")
    assert "memory limit of 512 MB" in warning.message
    assert "evaldemo_memory_limit" in warning.message


def test_memory_failure_is_on_the_page_and_the_next_example_renders(page: dict[str, str]) -> None:
    broken, good = page["memory"].split('print("after the memory hog")')
    assert "the example ran past its memory limit of 512 MB" in flat(broken)
    assert "MemoryError" in broken
    assert titles(good) == ["model.train()", "model.eval()"]
    assert outputs(good, "model.eval()") == [_good_eval()]
    assert "outputs differ" in flat(good)


def test_killed_worker_is_a_crash_at_the_directive(warned: dict[str, Warned]) -> None:
    warning = warned["evaldemo.crash"]
    assert warning.file == "index.md"
    assert warning.line == line_of(SOURCE, FENCE, after="## killed")
    assert "killed by SIGKILL" in warning.message


def test_example_after_the_kill_runs_in_a_fresh_process(page: dict[str, str]) -> None:
    broken, good = page["killed"].split('print("after the kill")')
    assert "the example's process was killed by SIGKILL while running this example" in flat(broken)
    assert titles(good) == ["model.train()", "model.eval()"]
    assert outputs(good, "model.eval()") == [_good_eval()]
    assert "after the kill" in good

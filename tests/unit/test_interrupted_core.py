"""The core's part in interrupted builds: which pages to read again, every result stored
before anyone waiting sees it, and a run handed out while reading counted as run; and the
``sys.path`` entries of conf.py that reach the examples."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from sphinx_evaldemo.config import EvalDemoConfig
from sphinx_evaldemo.examples.cache import Cache
from sphinx_evaldemo.examples.core import Holdings, Runs, Situation, outdated, plan
from sphinx_evaldemo.examples.executors.warm import added_paths
from sphinx_evaldemo.examples.model import ExampleRequest, ExampleResult
from sphinx_evaldemo.examples.records import ExampleRecord


def _record(page: str, name: str) -> ExampleRecord:
    return ExampleRecord(page, 1, 2, ExampleRequest(code=f"print({name!r})"), f"key-{name}")


BROKEN = ExampleRecord("broken", 3, problem="a bad option")  # never runs: never missing
RECORDED = {
    "a": [_record("a", "a1"), _record("a", "a2")],
    "b": [_record("b", "b1")],
    "c": [],
    "broken": [BROKEN],
}


@pytest.mark.parametrize(("held", "execute", "expected"), [
    ({"key-a1", "key-a2", "key-b1"}, "auto", []),
    ({"key-a1", "key-b1"}, "auto", ["a"]),  # one of two examples is missing
    (set(), "auto", ["a", "b"]),
    (set(), "force", ["a", "b"]),
    (set(), "cache", []),  # nothing would run: reading again changes nothing
    (set(), "never", []),
])
def test_the_pages_read_again(held: set[str], execute: str, expected: list[str]) -> None:
    assert outdated(RECORDED, held, EvalDemoConfig(execute=execute)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("execute", "expected"), [
    ("auto", ["a"]), ("force", ["a"]), ("cache", ["a"]),  # it would show the old result
    ("never", []),  # nothing is shown
])
def test_a_page_whose_keys_were_made_for_other_code_is_read_again(execute: str, expected: list[str]) -> None:
    """The worker's code (or torch) changed since the page was read: its key is stale."""
    now = "python=3 torch=2 code=new"
    fresh = ExampleRecord("b", 1, 2, ExampleRequest(code="print(1)"))
    fresh = ExampleRecord("b", 1, 2, fresh.request, fresh.request.key(now))  # type: ignore[union-attr]
    old = ExampleRecord("a", 1, 2, ExampleRequest(code="print(2)"))
    old = ExampleRecord("a", 1, 2, old.request, old.request.key("python=3 torch=2 code=old"))  # type: ignore[union-attr]
    recorded = {"a": [old], "b": [fresh]}
    held = {fresh.key, old.key}
    settings = EvalDemoConfig(execute=execute)  # type: ignore[arg-type]
    assert outdated(recorded, held, settings, now) == expected
    assert outdated(recorded, held, settings) == []  # without a fingerprint: only what is missing


def test_a_result_is_stored_before_anyone_waiting_sees_it(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    handed: list[Future[ExampleResult]] = []

    def submit(request: ExampleRequest, key: str) -> Future[ExampleResult]:
        handed.append(Future())
        return handed[-1]

    runs = Runs(cache, submit)
    record = _record("a", "a1")
    runs.submit(record)
    seen: list[bool] = []
    runs.running["key-a1"].add_done_callback(lambda f: seen.append(cache.has("key-a1")))
    threading.Thread(target=handed[0].set_result, args=(ExampleResult(),)).start()
    runs.running["key-a1"].result(timeout=10)
    assert seen == [True]
    assert Cache(tmp_path / "cache").get("key-a1") is not None  # on disk, for the next build


def test_a_run_handed_out_while_reading_counts_as_run() -> None:
    record = _record("a", "a1")
    held = Holdings(frozenset({"key-a1"}), empty=False)  # it ended, and was stored, already
    planned = plan([record], held, Situation(), submitted={"key-a1"})
    assert (planned.runs, planned.cached) == ((record,), ())


def test_the_paths_conf_py_added_reach_the_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    site = os.path.join(sys.prefix, "lib", "site-packages")
    path = ["", str(tmp_path / "src"), "src", "../other", site, str(tmp_path / "src")]
    assert added_paths(path) == [str(tmp_path / "src"), str(tmp_path.parent / "other")]

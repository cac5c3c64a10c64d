"""core.plan: every execution decision, from a table of builds (no Sphinx, no processes)."""

from __future__ import annotations

import itertools
from typing import Any, Literal

import pytest

from sphinx_evaldemo.examples.core import Holdings, Plan, Situation, plan
from sphinx_evaldemo.examples.model import ExampleRequest
from sphinx_evaldemo.examples.records import ExampleRecord


def _record(name: str, line: int) -> ExampleRecord:
    request = ExampleRequest(code=f"print({name!r})")
    return ExampleRecord("page", line, line + 1, request, f"key-{name}")


A, B, C = _record("a", 1), _record("b", 10), _record("c", 20)
RECORDS = (A, B, C)
BROKEN = ExampleRecord("page", 30, problem="a bad option")  # never runs, never looked up
#: what the last build recorded: b took longest, c never ran
DURATIONS = {"key-b": 5.0, "key-a": 1.0}
CACHES: dict[str, Holdings] = {
    "empty": Holdings(frozenset(), empty=True),
    "partial": Holdings(frozenset({"key-a"}), empty=False),
    "full": Holdings(frozenset({"key-a", "key-b", "key-c"}), empty=False),
}

Cache = Literal["empty", "partial", "full"]


def _plan(execute: str, cache: Cache, jobs: int = 1, executor: str = "local",
          reachable: bool | None = None, unreachable: str = "local", **more: Any) -> Plan:
    situation = Situation(
        execute=execute, executor=executor, reachable=reachable,  # type: ignore[arg-type]
        unreachable=unreachable, jobs=jobs, forked=jobs > 1,  # type: ignore[arg-type]
    )
    return plan((*RECORDS, BROKEN), CACHES[cache], situation, durations=DURATIONS, **more)


def _keys(records: tuple[ExampleRecord, ...]) -> list[str]:
    return [r.key or "" for r in records]


# execute, cache, -j, executor, reachable -> runs (in order), cached, missing, feed while reading, where
TABLE: list[tuple[str, Cache, int, str, bool | None, list[str], list[str], list[str], bool, str]] = [
    # auto runs what the cache lacks, the longest (last time) first, unknown ones last
    ("auto", "empty", 1, "local", None, ["key-b", "key-a", "key-c"], [], [], True, "local"),
    ("auto", "partial", 1, "local", None, ["key-b", "key-c"], ["key-a"], [], True, "local"),
    ("auto", "full", 1, "local", None, [], ["key-a", "key-b", "key-c"], [], True, "local"),
    # -j 2: a forked reader hands nothing out; the runs go after reading
    ("auto", "empty", 2, "local", None, ["key-b", "key-a", "key-c"], [], [], False, "local"),
    ("auto", "partial", 2, "local", None, ["key-b", "key-c"], ["key-a"], [], False, "local"),
    # force runs everything and takes nothing from the cache
    ("force", "full", 1, "local", None, ["key-b", "key-a", "key-c"], [], [], True, "local"),
    ("force", "partial", 2, "local", None, ["key-b", "key-a", "key-c"], [], [], False, "local"),
    # cache runs nothing: what is stored is shown, the rest is missing
    ("cache", "empty", 1, "local", None, [], [], ["key-a", "key-b", "key-c"], False, "local"),
    ("cache", "partial", 1, "local", None, [], ["key-a"], ["key-b", "key-c"], False, "local"),
    ("cache", "full", 2, "local", None, [], ["key-a", "key-b", "key-c"], [], False, "local"),
    # never looks nothing up
    ("never", "empty", 1, "local", None, [], [], [], False, "local"),
    ("never", "full", 2, "dask", True, [], [], [], False, "cluster"),
    # a cluster is fed after reading, longest first (durations are recorded)
    ("auto", "empty", 1, "dask", True, ["key-b", "key-a", "key-c"], [], [], False, "cluster"),
    ("auto", "partial", 2, "dask", None, ["key-b", "key-c"], ["key-a"], [], False, "cluster"),
    ("force", "full", 1, "dask", True, ["key-b", "key-a", "key-c"], [], [], False, "cluster"),
    ("cache", "partial", 1, "dask", True, [], ["key-a"], ["key-b", "key-c"], False, "cluster"),
    # a cluster that cannot be reached: this machine runs them, each at once
    ("auto", "partial", 1, "dask", False, ["key-b", "key-c"], ["key-a"], [], True, "local"),
    ("force", "empty", 2, "dask", False, ["key-b", "key-a", "key-c"], [], [], False, "local"),
]


@pytest.mark.parametrize(
    ("execute", "cache", "jobs", "executor", "reachable", "runs", "cached", "missing", "feed", "where"),
    TABLE,
)
def test_the_plan(execute: str, cache: Cache, jobs: int, executor: str, reachable: bool | None,
                  runs: list[str], cached: list[str], missing: list[str], feed: bool, where: str) -> None:
    found = _plan(execute, cache, jobs, executor, reachable)
    assert _keys(found.runs) == runs
    assert _keys(found.cached) == cached
    assert _keys(found.missing) == missing
    assert found.feed_while_reading is feed
    assert found.where == where
    assert found.fallback is (reachable is False and where == "local")
    assert found.connect is (jobs == 1)  # no thread before Sphinx forks its readers


def test_an_unreachable_cluster_stops_the_build_when_asked() -> None:
    found = _plan("auto", "empty", executor="dask", reachable=False, unreachable="error")
    assert found.where == "stop"
    assert (found.start, found.feed_while_reading, found.fallback) == (0, False, False)


def test_a_first_build_on_a_cluster_is_fed_at_once() -> None:
    """No duration recorded yet: nothing to sort by, so each run goes out as it is read."""
    situation = Situation(execute="auto", executor="dask", reachable=True)
    assert plan(RECORDS, CACHES["empty"], situation, durations={}).feed_while_reading
    assert not plan(RECORDS, CACHES["empty"], situation, durations=DURATIONS).feed_while_reading


@pytest.mark.parametrize(
    ("execute", "cache", "scanned", "known", "start", "scan"),
    [
        ("auto", "empty", None, (), 0, True),  # cold: count the directives, then ask again
        ("auto", "empty", 7, (), 7, False),
        ("auto", "partial", None, RECORDS, 2, False),  # a saved environment: its missing keys
        ("auto", "full", None, RECORDS, 0, False),  # a prose edit starts nothing
        ("force", "full", 4, RECORDS, 4, False),
        ("cache", "empty", 3, (), 0, False),
        ("never", "empty", 3, (), 0, False),
    ],
)
def test_what_starts_before_reading(execute: str, cache: Cache, scanned: int | None,
                                    known: tuple[ExampleRecord, ...], start: int, scan: bool) -> None:
    found = plan(known, CACHES[cache], Situation(execute=execute),  # type: ignore[arg-type]
                 at="read", scanned=scanned)
    assert (found.start, found.scan) == (start, scan)


@pytest.mark.parametrize(
    ("case", "situation", "held", "start"),
    [
        ("clean, empty local cache", Situation(clean=True), CACHES["empty"], 1),
        ("a saved environment", Situation(clean=False), CACHES["empty"], 0),
        ("a warm cache", Situation(clean=True), CACHES["partial"], 0),
        ("a remote cache still listing", Situation(clean=True),
         Holdings(frozenset(), empty=True, known=False, local=False), 0),
        ("a listed remote cache", Situation(clean=True),
         Holdings(frozenset(), empty=True, known=True, local=False), 0),
        ("force on a remote cache", Situation(execute="force", clean=True),
         Holdings(frozenset(), empty=True, known=False, local=False), 1),
        ("a remote cluster", Situation(executor="dask", clean=True), CACHES["empty"], 0),
        ("a local cluster", Situation(executor="dask", local_cluster=True, clean=True), CACHES["empty"], 1),
        ("execute cache", Situation(execute="cache", clean=True), CACHES["empty"], 0),
    ],
)
def test_the_head_start_when_the_configuration_is_read(
    case: str, situation: Situation, held: Holdings, start: int
) -> None:
    """Only a clean build on this machine that will surely run starts before Sphinx loads
    its environment; the count is whether a source opens the directive."""
    assert plan((), held, situation, at="start", scanned=1).start == start, case


def test_pages_are_written_while_runs_go_on_only_in_a_serial_build_that_handed_them_out() -> None:
    submitted = {"key-b"}
    serial = plan(RECORDS, CACHES["empty"], Situation(), submitted=submitted)
    forked_writers = plan(RECORDS, CACHES["empty"], Situation(parallel_write=True), submitted=submitted)
    nothing_out = plan(RECORDS, CACHES["empty"], Situation())
    assert (serial.write_while_running, forked_writers.write_while_running,
            nothing_out.write_while_running) == (True, False, False)


def test_a_remote_cache_not_yet_listed_decides_nothing_but_force() -> None:
    pending = Holdings(frozenset({"key-a"}), empty=False, known=False, local=False)
    auto = plan(RECORDS, pending, Situation())
    assert (auto.runs, auto.cached, auto.missing, auto.feed_while_reading) == ((), (), (), False)
    assert len(plan(RECORDS, pending, Situation(execute="force")).runs) == 3


@pytest.mark.parametrize(
    ("execute", "cache", "jobs", "executor", "reachable"),
    list(itertools.product(
        ["auto", "force", "cache", "never"], ["empty", "partial", "full"], [1, 2],
        ["local", "dask"], [True, False, None],
    )),
)
def test_every_build_runs_each_example_at_most_once_and_shows_each_once(
    execute: str, cache: Cache, jobs: int, executor: str, reachable: bool | None
) -> None:
    """Across the whole table: each runnable record is run, taken or missing, exactly
    once (none of them under "never"); only "auto" and "force" run; nothing is handed
    out by a forked reader; a broken record never appears."""
    found = _plan(execute, cache, jobs, executor, reachable)
    every = [*found.runs, *found.cached, *found.missing]
    assert BROKEN not in every
    if execute == "never":
        assert every == []
        return
    assert sorted(_keys(tuple(every))) == ["key-a", "key-b", "key-c"]
    if execute in ("cache",):
        assert found.runs == ()
    if execute == "force":
        assert found.cached == () and found.missing == ()
    if jobs > 1:
        assert not found.feed_while_reading


def test_a_forked_reader_never_asks_the_cache() -> None:
    """A ``-j`` reader is a fork: the cache (and a remote listing on its way) belongs to
    the build's own process, so its plan neither asks for the holdings nor the durations."""

    def asked() -> Any:
        raise AssertionError("the cache was asked in a forked reader")

    found = plan(RECORDS, asked, Situation(forked=True, jobs=2), at="record", durations=asked)
    assert (found.runs, found.feed_while_reading) == ((), False)


def test_durations_are_read_only_once_the_cache_can_answer() -> None:
    pending = Holdings(known=False, local=False)
    read: list[bool] = []
    plan(RECORDS, pending, Situation(), durations=lambda: read.append(True) or {})
    plan(RECORDS, CACHES["empty"], Situation(), durations=lambda: read.append(True) or {})
    assert read == [True]

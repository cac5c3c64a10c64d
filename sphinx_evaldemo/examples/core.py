"""Every decision about running a build's examples, and the runs themselves; no Sphinx.

:func:`plan` answers from plain data what to run, in what order, what to start early,
where (this machine or a cluster), and what happens when a cluster cannot be reached.
:func:`obtain` (and :class:`Runs`, which it uses) carries a plan out: it submits the
runs, collects them, and stores each result as it ends. :mod:`.execution` keeps one
build's state between Sphinx's events and asks :func:`plan` at each of them. Nothing
else in the package reads ``evaldemo_execute`` or whether a ``-j`` fork is in effect
(``tests/unit/test_one_owner.py`` checks it); the executors run what they are given.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Literal

from ..config import EvalDemoConfig, ExecuteMode, ExecutorName
from .cache import Cache
from .executors import Executor
from .model import ExampleRequest, ExampleResult, Failure, harness_failure
from .records import ExampleRecord
from .scan import examples_in

Source = Literal["run", "cache", "none"]  # "none": execute="cache" had no result
#: ``local``: this machine; ``cluster``: Dask; ``stop``: the build stops (no cluster).
Where = Literal["local", "cluster", "stop"]
#: One warning: ``(docname, line, message, subtype, where)``; ``where`` is ``""`` on the
#: page's own file, else the place as Sphinx names it (``src/m.py:docstring of m.Net:13``).
Problem = tuple[str, int, str, str, str]
#: Runs a request gets: one more when the harness failed under it (a warm parent died).
ATTEMPTS = 2
#: A run the build waits on is named again once it has been out this long (seconds)...
STILL_FIRST = 5.0
#: ... and then at most this often, so that a long example is not a silent build.
STILL_EVERY = 10.0


# -- the decisions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Situation:
    """The build, as far as running examples goes: the settings and Sphinx's state."""

    execute: ExecuteMode = "auto"
    executor: ExecutorName = "local"
    #: Dask's scheduler is a cluster this build starts on this machine
    local_cluster: bool = False
    #: whether the Dask scheduler answered (``None``: not tried yet)
    reachable: bool | None = None
    unreachable: Literal["local", "error"] = "local"
    #: Sphinx's ``-j``: readers fork after the start, so no thread may exist before
    jobs: int = 1
    #: this process is one of Sphinx's forked ``-j`` readers
    forked: bool = False
    #: Sphinx forks its writers (nothing of an executor may run then)
    parallel_write: bool = False
    #: no saved environment: every page will be read
    clean: bool = False


@dataclass(frozen=True, slots=True)
class Holdings:
    """What the cache holds, as far as it can say now."""

    keys: Container[str] = frozenset()
    empty: bool = True
    #: False while a remote cache's listing is still on its way
    known: bool = True
    local: bool = True


Stage = Literal["start", "read", "record", "done"]


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with a set of records now."""

    looks_up: bool  # results are looked up or made at all ("never": code only)
    may_run: bool  # an example may be started ("cache" and "never": no)
    runs: tuple[ExampleRecord, ...]  # to run, the longest (last time) first
    cached: tuple[ExampleRecord, ...]  # to take from the cache
    missing: tuple[ExampleRecord, ...]  # no stored result, and none may be made
    start: int  # runs to get the executor ready for now (0: start nothing)
    scan: bool  # count the directives in the sources, and ask again (``scanned``)
    connect: bool  # the executor may start threads now (no -j fork follows)
    feed_while_reading: bool  # each run goes out as soon as its page is read
    write_while_running: bool  # pages are written while runs go on (each waits for its own)
    where: Where
    fallback: bool  # the cluster cannot be reached: this machine runs them (one warning)


def plan(
    records: Sequence[ExampleRecord], holdings: Holdings | Callable[[], Holdings],
    situation: Situation, *, at: Stage = "done",
    durations: Mapping[str, float] | Callable[[], Mapping[str, float]] | None = None,
    scanned: int | None = None, submitted: Container[str] = frozenset(),
) -> Plan:
    """What to do with ``records`` at stage ``at`` of a build.

    ``scanned``: how many directives the sources about to be read open (wanted only on
    a cold cache, where no record says what will run: ``Plan.scan``); ``durations``: seconds each key
    took when it last ran; ``submitted``: keys already handed out while Sphinx read.
    ``holdings`` and ``durations`` may be functions, asked only when needed: a forked
    ``-j`` reader never asks the cache (its state belongs to the build's own process).
    """
    s = situation
    if s.forked and at == "record":
        held = Holdings(known=False)  # a forked reader hands nothing out
    else:
        held = holdings() if callable(holdings) else holdings
    looks_up = s.execute != "never"
    may_run = s.execute in ("auto", "force")
    force = s.execute == "force"
    knows = force or held.known
    if callable(durations):
        durations = durations() if held.known else None  # a remote record comes with the listing
    cold = force or (held.known and held.empty and (held.local or at != "start"))
    stored: list[ExampleRecord] = []
    runs: list[ExampleRecord] = []
    missing: list[ExampleRecord] = []
    for record in records if looks_up and knows else ():
        if not record.runnable:
            continue
        if record.key in submitted:
            runs.append(record)  # handed out while Sphinx read (stored as soon as it ended)
        elif not force and record.key in held.keys:
            stored.append(record)
        else:
            (runs if may_run else missing).append(record)

    if s.executor == "local":
        where: Where = "local"
    elif s.reachable is False:
        where = "local" if s.unreachable == "local" else "stop"
    else:
        where = "cluster"
    on_this_machine = where == "local" or s.local_cluster
    # one machine starts each run at once; a cluster is fed longest first after reading,
    # unless no duration is recorded yet (nothing to sort by)
    eager = where == "local" or not durations
    feed = may_run and knows and eager and not s.forked and where != "stop"

    starts = may_run and knows and where != "stop"
    if at == "start":  # before the saved environment is loaded, which says more
        starts = starts and s.clean and on_this_machine
    expected = (scanned or 0) if cold else len(runs)
    start = expected if starts else 0
    return Plan(
        looks_up=looks_up, may_run=may_run,
        runs=tuple(longest_first(runs, durations or {})),
        cached=tuple(stored), missing=tuple(missing), start=start,
        scan=starts and cold and scanned is None,
        connect=s.jobs <= 1,
        feed_while_reading=feed,
        write_while_running=(
            feed and not s.parallel_write and any(r.key in submitted for r in runs)
        ),
        where=where, fallback=s.reachable is False and where == "local" and s.executor != "local",
    )


def not_run_advice(settings: EvalDemoConfig) -> str:
    """What to do about a page shown without its example's result."""
    if settings.execute == "cache":
        return "evaldemo_execute is 'cache': build once with 'auto' to store it"
    return "build again: pages lacking a result are read again and only what is missing runs"


def outdated(
    recorded: Mapping[str, Sequence[ExampleRecord]], held: Container[str],
    settings: EvalDemoConfig, fingerprint: str | None = None,
) -> list[str]:
    """The pages to read again: an example of theirs has no stored result, or its key was
    made for other code and versions than these (``fingerprint``).

    An interrupted build (Ctrl-C, a killed CI job) saved the environment of pages whose
    runs never ended; reading those pages again runs what is missing, and nothing else.
    With ``cache`` or ``never`` nothing would run, so no page is read again for a missing
    result. A page whose keys are stale (torch, or the code that computes results, moved)
    is read again unless nothing is shown (``never``): it would show the old result.
    """
    def stale(record: ExampleRecord) -> bool:
        return (fingerprint is not None and record.request is not None
                and record.request.key(fingerprint) != record.key)

    def missing(record: ExampleRecord) -> bool:
        return settings.execute in ("auto", "force") and record.key not in held

    if settings.execute == "never":
        return []
    return sorted(
        docname for docname, records in recorded.items()
        if any(r.runnable and (missing(r) or stale(r)) for r in records)
    )


def longest_first(records: list[ExampleRecord], seconds: Mapping[str, float]) -> list[ExampleRecord]:
    """The records, those that took longest last time first (unknown ones after, in page order).

    A cluster's makespan approaches total work / workers only when the long examples
    do not start last.
    """
    order = {id(r): i for i, r in enumerate(records)}
    return sorted(records, key=lambda r: (-seconds.get(r.key or "", -1.0), order[id(r)]))


# -- carrying a plan out -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    record: ExampleRecord
    result: ExampleResult
    source: Source

    @property
    def ran(self) -> bool:
        return self.source == "run"


_NOT_RUN = ExampleResult(failure=Failure("not-run", "no stored result for this example"))


@dataclass
class Runs:
    """Runs in flight, the records that wait for each, and what each took.

    Identical examples (same key) run once. Failures of the example are stored like
    successes; a failure of the harness (``worker``) is run once more, and never stored:
    the next build runs it again.
    """

    cache: Cache
    submit_to: Callable[[ExampleRequest, str], Future[ExampleResult]]
    running: dict[str, Future[ExampleResult]] = field(default_factory=dict)
    waiting: dict[str, list[ExampleRecord]] = field(default_factory=dict)
    #: seconds each key's run took in this build (for the next build's order)
    durations: dict[str, float] = field(default_factory=dict)
    closing: bool = False
    #: told ``(records, seconds)`` while the build waits on a run that has been out long
    still: Callable[[Sequence[ExampleRecord], float], None] = lambda records, seconds: None
    clock: Callable[[], float] = time.monotonic
    #: when each key was handed out, and when the build last named it as still running
    handed: dict[str, float] = field(default_factory=dict)
    named: dict[str, float] = field(default_factory=dict)

    def submit(self, record: ExampleRecord) -> None:
        """Hand ``record`` out unless a run of its key is already out."""
        assert record.key is not None and record.request is not None
        if record.key not in self.running:
            self.handed[record.key] = self.clock()
            # stored the moment it ends (before anyone waiting sees it), not when Sphinx
            # gets round to the page that shows it: what finished survives an interrupt
            self.running[record.key] = retried(
                self.submit_to, record.request, record.key, lambda: self.closing,
                ended=functools.partial(self._store, record.key))

    def _store(self, key: str, result: ExampleResult) -> None:
        if not harness_failure(result):
            self.cache.put(key, result)  # failures of the example are stored too

    def dispatch(self, planned: Plan) -> Iterator[Outcome]:
        """Outcomes known now (stored results, misses); the runs go out."""
        if not planned.looks_up:
            return
        self.cache.prefetch(r.key for r in planned.cached if r.key)  # one batch of reads
        later = list(planned.runs)
        for record in planned.cached:
            hit = self.cache.get(record.key or "")
            if hit is not None:
                yield Outcome(record, hit, "cache")
            elif planned.may_run:  # listed, but unreadable now
                later.append(record)
            else:
                yield Outcome(record, _NOT_RUN, "none")
        for record in planned.missing:
            yield Outcome(record, _NOT_RUN, "none")
        for record in later:
            self.submit(record)
            self.waiting.setdefault(record.key or "", []).append(record)

    def finished(self, key: str) -> Iterator[Outcome]:
        """The run of ``key`` (waited for): stored, and an outcome per record that has it."""
        self._wait_for([key])
        result = self.running.pop(key).result()  # stored by now (``_store``)
        self.durations[key] = result.seconds
        for record in self.waiting.pop(key, ()):
            yield Outcome(record, result, "run")

    def collect(self) -> Iterator[Outcome]:
        """Every waited-for run, as it finishes."""
        pending = set(self.waiting)
        while pending:
            for key in self._wait_for(sorted(pending)):
                pending.discard(key)
                yield from self.finished(key)

    def _wait_for(self, keys: Sequence[str]) -> list[str]:
        """Wait until one of ``keys`` has ended (those that have); meanwhile the run out
        longest among them is named, first after ``STILL_FIRST`` seconds, then every
        ``STILL_EVERY``."""
        futures = {self.running[key]: key for key in keys}
        oldest = min(keys, key=lambda k: self.handed.get(k, 0.0))
        while True:
            timeout = max(0.05, self._due(oldest) - self.clock())
            done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
            if done:
                return [futures[f] for f in done]
            now = self.clock()
            if now >= self._due(oldest):
                self.named[oldest] = now
                self.still(self.waiting.get(oldest, ()), now - self.handed.get(oldest, now))

    def _due(self, key: str) -> float:
        handed = self.handed.setdefault(key, self.clock())
        last = self.named.get(key)
        return handed + STILL_FIRST if last is None else last + STILL_EVERY

    def clear(self) -> None:
        self.running.clear()
        self.waiting.clear()
        self.handed.clear()
        self.named.clear()


def retried(
    submit: Callable[[ExampleRequest, str], Future[ExampleResult]], request: ExampleRequest,
    key: str = "", closing: Callable[[], bool] = lambda: False,
    ended: Callable[[ExampleResult], None] = lambda result: None,
) -> Future[ExampleResult]:
    """``submit(request, key)``, run once more when the harness failed under it (a warm parent
    that died is replaced by the next request), unless the build is closing; ``ended`` is
    given the final result before the future has it."""
    out: Future[ExampleResult] = Future()

    def attempt(number: int) -> None:
        def over(done: Future[ExampleResult]) -> None:
            result = done.result()
            failure = result.failure
            if failure is not None and failure.kind == "worker" and number < ATTEMPTS and not closing():
                attempt(number + 1)
            else:
                try:
                    ended(result)
                finally:
                    out.set_result(result)

        submit(request, key).add_done_callback(over)

    attempt(1)
    return out


def obtain(planned: Plan, cache: Cache, executor: Executor) -> Iterator[Outcome]:
    """An outcome per record of ``planned``: stored results first, then runs as they end."""
    runs = Runs(cache, executor.submit)
    yield from runs.dispatch(planned)
    yield from runs.collect()


class StopBuild(Exception):
    """The build cannot go on (a cluster that cannot be reached, when asked to stop)."""



def situation(
    settings: EvalDemoConfig, *, main: int, reachable: bool | None = None, jobs: int = 1,
    parallel_write: bool = False, clean: bool = False,
) -> Situation:
    """The build's situation; ``main``: the process id of the build's own process (a
    ``-j`` reader is a fork of it: this is the one place that asks)."""
    return Situation(
        execute=settings.execute, executor=settings.executor,
        local_cluster=settings.scheduler() == "local", reachable=reachable,
        unreachable=settings.dask_unreachable, jobs=jobs, forked=os.getpid() != main,
        parallel_write=parallel_write, clean=clean,
    )


def looks_up(settings: EvalDemoConfig) -> bool:
    """Whether pages show results at all (``never`` shows code only)."""
    return settings.execute != "never"


def reads_ahead(settings: EvalDemoConfig, srcdir: str) -> bool:
    """Whether a remote cache's namespace is read while Sphinx starts (a snapshot): results
    will be looked up, the cache is an object store rather than a folder, and some source
    opens the directive."""
    location = os.fspath(settings.cache_dir or "")
    remote = "://" in location and not location.startswith("file://")
    return remote and settings.execute != "never" and examples_in(srcdir)

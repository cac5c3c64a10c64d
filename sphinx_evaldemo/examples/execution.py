"""One build's execution between Sphinx's events: the executor's life, what each result is.

Every decision is asked of :mod:`.core` (``plan``); this module keeps the state the
answers need from one event to the next and carries them out. No Sphinx here either.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace

from ..config import EvalDemoConfig
from .cache import Cache, fingerprint
from .core import (
    Holdings,
    Outcome,
    Plan,
    Problem,
    Runs,
    Source,
    Stage,
    StopBuild,
    looks_up,
    outdated,
    plan,
    situation,
)
from .diagnose import diagnose
from .executors import Executor, open_executors
from .model import ExampleRequest, ExampleResult
from .records import ExampleRecord
from .scan import directives_in, examples_in


class Execution:
    """One build's runs between Sphinx's events: the executor's life, what each result is.

    Made when the configuration is read; every question about running is put to
    :func:`plan`. ``warn(message, subtype)`` reports what has no page (a cluster that
    was replaced by this machine).
    """

    def __init__(
        self, settings: EvalDemoConfig, cache: Cache, srcdir: str, *, jobs: int = 1,
        warn: Callable[[str, str], None] = lambda message, subtype: None,
        still: Callable[[Sequence[ExampleRecord], float], None] = lambda records, seconds: None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.srcdir = srcdir
        self._warn = warn
        self._jobs = jobs
        self._main = os.getpid()  # the build's own process (core.situation compares)
        self._reachable: bool | None = None
        self._fell_back = False  # the cluster could not be reached: this machine ran them
        #: the executor the runs go to, and every one opened for them (closed in order)
        self._executor: Executor | None = None
        self._opened: list[Executor] = []
        self._closer: weakref.finalize[..., Execution] | None = None
        self.runs = Runs(cache, self._submit, still=still)
        #: pages read in this build (whose examples run at env-updated)
        self.reading: set[str] = set()
        self.results: dict[str, ExampleResult] = {}
        self.sources: dict[str, Source] = {}
        self._recorded: dict[str, float] | None = None  # durations from the cache, read once
        self._empty: bool | None = None  # whether the cache was empty when the build began
        #: when runs were left going at the end of reading (``None``: none are)
        self._started: float | None = None
        self._first_submit: float | None = None
        self.ran = self.cached = self.failed = 0
        self.seconds = 0.0
        self.workers_started = 0
        self.where = "this machine"
        self.cache_warned = False

    # -- what the core is asked from ---------------------------------------------------

    def holdings(self, *, wait: bool = False) -> Holdings:
        """What the cache holds; with ``wait``, after a remote listing on its way is in."""
        known = wait or self.cache.listed()
        if self._empty is None and known:
            self._empty = self.cache.empty()
        return Holdings(_Held(self.cache), bool(self._empty), known, self.cache.local)

    def durations(self) -> dict[str, float]:
        if self._recorded is None:
            self._recorded = self.cache.durations()
        return self._recorded

    def _plan(
        self, records: Sequence[ExampleRecord], at: Stage, *, clean: bool = False,
        parallel_write: bool = False, scanned: int | None = None,
    ) -> Plan:
        return plan(
            records, lambda: self.holdings(wait=at == "done"),
            situation(self.settings, main=self._main, reachable=self._reachable, jobs=self._jobs,
                      parallel_write=parallel_write, clean=clean),
            at=at, durations=self.durations, scanned=scanned, submitted=self.runs.running,
        )

    # -- the events ------------------------------------------------------------------

    def configured(self, *, clean: bool) -> None:
        """The configuration is read: a clean build that will surely run starts now, so
        the worker's import of torch overlaps Sphinx's start-up."""
        planned = self._plan((), "start", clean=clean)
        if planned.scan:
            planned = self._plan((), "start", clean=clean, scanned=int(examples_in(self.srcdir)))
        if planned.start:
            self._prestart(planned)

    def before_reading(
        self, docnames: Iterable[str], recorded: Mapping[str, list[ExampleRecord]],
        source_of: Callable[[str], str],
    ) -> None:
        """Start the executor now when examples will surely run, so torch loads while Sphinx reads.

        Known pages are judged by the examples they had (a prose edit runs nothing, so
        it starts nothing); on a cold cache, by how often each source opens the directive.
        """
        self.reading = set(docnames)
        known = [r for d in sorted(self.reading) for r in recorded.get(d, ())]
        planned = self._plan(known, "read")
        if planned.scan:
            scanned = sum(directives_in(source_of(d)) for d in sorted(self.reading))
            planned = self._plan(known, "read", scanned=scanned)
        if planned.start:
            self._prestart(planned)

    def recorded(self, record: ExampleRecord) -> None:
        """A directive recorded an example: in a serial build, start it right away, so the
        run overlaps Sphinx's reading of the remaining pages."""
        planned = self._plan((record,), "record")
        if planned.feed_while_reading and planned.runs:
            self.runs.submit(planned.runs[0])

    def read(
        self, recorded: Mapping[str, list[ExampleRecord]], *, parallel_write: bool,
        progress: Callable[[Iterator[Outcome], int], Iterable[Outcome]],
    ) -> list[Problem]:
        """Every page is read: take what the cache has, and run the rest.

        In a serial build whose runs went out while Sphinx read, they go on while Sphinx
        writes (each page waits for its own, :meth:`settle`); otherwise they are waited
        for here, and the executor is closed before Sphinx forks its writers.
        """
        records = [r for d in sorted(self.reading) for r in recorded.get(d, ())]
        planned = self._plan(records, "done", parallel_write=parallel_write)
        if not planned.looks_up or not records:
            return []
        if planned.write_while_running:
            self._started = time.perf_counter()
            return self._take_all(self.runs.dispatch(planned))
        started = time.perf_counter()
        try:
            # what the cache holds is taken first, and never called "running"
            problems = self._take_all(self.runs.dispatch(planned))
            total = len(self.runs.waiting)
            if not total:
                return problems
            return sorted(problems + self._take_all(progress(self.runs.collect(), total)),
                          key=lambda p: (p[0], p[1]))
        except BaseException:
            self.close(abort=True)
            raise
        finally:
            self._ran_for(started)

    def settle(self, records: Iterable[ExampleRecord] | None = None) -> list[Problem]:
        """Wait for the runs ``records`` (all, with ``None``) still wait for; their warnings.

        A page calls this before it is written, so it waits for its own examples only.
        When the last run is in, the executor is closed.
        """
        waiting = self.runs.waiting
        keys = set(waiting) if records is None else {r.key for r in records if r.key} & set(waiting)
        try:
            problems = self._take_all(
                outcome for key in sorted(keys, key=lambda k: [(r.docname, r.lineno) for r in waiting[k]])
                for outcome in self.runs.finished(key)
            )
        except BaseException:
            self.close(abort=True)
            raise
        if self._started is not None and not waiting:
            self._ran_for(self._started)
            self._started = None
        return problems

    def outdated(self, recorded: Mapping[str, list[ExampleRecord]]) -> list[str]:
        """The pages an earlier, interrupted build left without a result for an example."""
        return outdated(recorded, _Held(self.cache), self.settings, fingerprint())

    def preload(self, recorded: Mapping[str, list[ExampleRecord]]) -> None:
        """Read every stored result the pages show from a remote store, in one batch, so
        forked ``-j`` writers find them in memory instead of each asking the store."""
        if looks_up(self.settings) and not self.cache.local:
            self.cache.prefetch(r.key for records in recorded.values() for r in records if r.key)

    # -- what the pages show ---------------------------------------------------------

    @property
    def executes(self) -> bool:
        """Whether pages show results at all (``never`` shows code only)."""
        return looks_up(self.settings)

    def result(self, record: ExampleRecord) -> ExampleResult | None:
        """The result a page shows for ``record``: this build's, else the cache's."""
        if not self.executes or record.key is None:
            return None
        found = self.results.get(record.key)
        if found is None:
            found = self.cache.get(record.key)
            if found is not None:  # a page written without being read again in this build
                self.sources.setdefault(record.key, "cache")
        return found

    def source(self, record: ExampleRecord) -> Source | None:
        """Whether this build ran the example or took it from the cache."""
        return None if record.key is None else self.sources.get(record.key)

    # -- the executor's life ---------------------------------------------------------

    def _prestart(self, planned: Plan) -> None:
        for executor in self._open_all():
            executor.prestart(planned.start, connect=planned.connect)

    def _open_all(self) -> list[Executor]:
        if not self._opened:
            self._use(open_executors(self.settings, self.srcdir))
        return self._opened

    def _use(self, executors: list[Executor]) -> None:
        """Run on ``executors[0]``; close them all at exit if the build does not.

        Ctrl-C skips build-finished; the exit hook holds the executors (never the
        build) only while they are open: :meth:`close` detaches it.
        """
        self._opened, self._executor = executors, executors[0]
        if self._closer is not None:
            self._closer.detach()
        self._closer = weakref.finalize(self, _close_all, list(executors))

    def _submit(self, request: ExampleRequest, key: str) -> Future[ExampleResult]:
        if self._first_submit is None:
            self._first_submit = time.perf_counter()
        return self._ready().submit(request, key)

    def _ready(self) -> Executor:
        """The executor to run on; the first time, a cluster is reached or replaced."""
        self._open_all()
        assert self._executor is not None
        if self._reachable is None:
            reason = self._executor.connect()
            self._reachable = reason is None
            planned = self._plan((), "done")
            if planned.where == "stop":
                raise StopBuild(
                    f"cannot reach the Dask scheduler at {self.settings.scheduler()} ({reason}); "
                    "start it, correct evaldemo_dask_scheduler (or EVALDEMO_DASK_SCHEDULER), "
                    "or set evaldemo_dask_unreachable = 'local'"
                )
            if planned.fallback:
                self._warn(
                    f"cannot reach the Dask scheduler at {self.settings.scheduler()} ({reason}); "
                    "running the examples on this machine instead (set evaldemo_dask_unreachable "
                    "= 'error' to stop the build in this case)", "dask",
                )
                cluster, *rest = self._opened  # a local cluster's own executor stays
                self._close_one(cluster)
                self._use(rest or open_executors(_on_this_machine(self.settings), self.srcdir))
                self._fell_back = True
                self.where = "this machine (the Dask scheduler was unreachable)"
        return self._executor

    def _close_one(self, executor: Executor, *, abort: bool = False) -> None:
        executor.close(abort=abort)
        self.workers_started += executor.started

    def close(self, *, abort: bool = False) -> None:
        """Stop the executors; nothing of them is left running (Sphinx may fork next)."""
        self.runs.closing = True
        if self._executor is not None and not self._fell_back:
            self.where = self._executor.where()
        for executor in self._opened:
            self._close_one(executor, abort=abort)
        self._opened, self._executor = [], None
        if self._closer is not None:
            self._closer.detach()
            self._closer = None
        self.runs.clear()  # ended by now: each has its result (a harness failure at worst)
        self.runs.closing = False
        self._reachable, self._fell_back = None, False  # a next executor is reached again

    def _ran_for(self, started: float) -> None:
        """The runs are over: close the executor, count the time since the first one."""
        self.close()
        self.seconds += time.perf_counter() - min(started, self._first_submit or started)
        self._first_submit = None

    def _take_all(self, outcomes: Iterable[Outcome]) -> list[Problem]:
        problems: list[Problem] = []
        for outcome in outcomes:
            key = outcome.record.key or ""
            self.results[key] = outcome.result
            if self.sources.get(key) != "run":
                self.sources[key] = outcome.source
            self.ran += outcome.ran
            self.cached += outcome.source == "cache"
            found = diagnose(outcome.record, outcome.result)
            self.failed += bool(found)
            record = outcome.record
            problems += [(record.docname, line, message, kind, record.elsewhere(line))
                         for message, line, kind in found]
        return sorted(problems, key=lambda p: (p[0], p[1]))  # page order

    # -- the end -----------------------------------------------------------------------

    def finish(self, recorded: Mapping[str, list[ExampleRecord]], all_pages: set[str],
               *, failed: bool) -> list[Problem]:
        """Take the runs no written page waited for, close, and after a full build prune
        results no page uses any more; the warnings of those runs."""
        problems = [] if failed else self.settle()
        self.close(abort=failed)
        if not failed:
            self.cache.record_durations(self.runs.durations)
        self.cache.close()
        if not failed and self.reading >= all_pages:
            used = {r.key for records in recorded.values() for r in records if r.key}
            self.cache.prune(keep=used)
            self.cache.bundle(used)
        return problems

    def closing_line(self, recorded: Mapping[str, list[ExampleRecord]]) -> str | None:
        """One line on the build: what ran, what the cache gave, what failed, and the time.

        It counts the examples of the pages this build read; a build that read none
        (nothing changed) says what its pages show: every stored result, from the cache.
        """
        if not self.executes:
            return None  # code only: no example is run or looked up
        ran, cached = self.ran, self.cached
        if not self.reading:
            keys = [r.key for records in recorded.values() for r in records if r.runnable and r.key]
            cached = sum(self.cache.has(k) for k in keys)
        if not (ran or cached):
            return None
        parts = [_count(ran, "example ran", "examples ran"),
                 f"{cached} came from the cache", f"{self.failed} failed"]
        if ran and self.workers_started:
            parts.append(_count(self.workers_started, "worker process started",
                                "worker processes started"))
        where = f" on {self.where}" if ran else ""
        return f"evaldemo: {', '.join(parts)} ({self.seconds:.1f} s){where}"

    def where_text(self) -> str:
        """Where this build's examples ran, for the execution report."""
        if not self.ran:
            return "No example ran in this build: every result came from the cache."
        return f"The examples that ran in this build ran on {self.where}."


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


class _Held:
    """The cache's keys as a container (``in`` asks the cache)."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._cache.has(key)


def _chain(first: Iterator[Outcome], then: Callable[[], Iterator[Outcome]]) -> Iterator[Outcome]:
    yield from first
    yield from then()


def _close_all(executors: list[Executor]) -> None:
    for executor in executors:
        executor.close(abort=True)


def _on_this_machine(settings: EvalDemoConfig) -> EvalDemoConfig:
    return replace(settings, executor="local")

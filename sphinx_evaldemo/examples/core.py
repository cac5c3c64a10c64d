"""Every decision about running a build's examples, and the runs themselves; no Sphinx.

:func:`plan` answers from plain data what to run, in what order, what to start early,
where (this machine or a cluster), and what happens when a cluster cannot be reached.
:func:`obtain` (and :class:`Runs`, which it uses) carries a plan out: it submits the
runs, collects them, and stores each result as it ends. :class:`Execution` keeps one
build's state between Sphinx's events and asks :func:`plan` at each of them. Nothing
else in the package reads ``evaldemo_execute`` or whether a ``-j`` fork is in effect
(``tests/unit/test_one_owner.py`` checks it); the executors run what they are given.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, as_completed
from dataclasses import dataclass, field, replace
from typing import Literal

from ..config import EvalDemoConfig, ExecuteMode, ExecutorName
from .cache import Cache
from .diagnose import diagnose
from .executors import Executor
from .model import ExampleRequest, ExampleResult, Failure, harness_failure
from .records import ExampleRecord
from .scan import directives_in, examples_in

Source = Literal["run", "cache", "none"]  # "none": execute="cache" had no result
#: ``local``: this machine; ``cluster``: Dask; ``stop``: the build stops (no cluster).
Where = Literal["local", "cluster", "stop"]
#: One warning: ``(docname, line, message, subtype)``.
Problem = tuple[str, int, str, str]
#: Runs a request gets: one more when the harness failed under it (a warm parent died).
ATTEMPTS = 2


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
    records: Sequence[ExampleRecord], held: Holdings, situation: Situation, *,
    at: Stage = "done", durations: Mapping[str, float] | None = None, scanned: int | None = None,
    submitted: Container[str] = frozenset(),
) -> Plan:
    """What to do with ``records`` at stage ``at`` of a build.

    ``scanned``: how many directives the sources about to be read open (wanted only on
    a cold cache, where no record says what will run: ``Plan.scan``); ``durations``: seconds each key
    took when it last ran; ``submitted``: keys already handed out while Sphinx read.
    """
    s = situation
    looks_up = s.execute != "never"
    may_run = s.execute in ("auto", "force")
    force = s.execute == "force"
    knows = force or held.known
    cold = force or (held.known and held.empty and (held.local or at != "start"))
    stored: list[ExampleRecord] = []
    runs: list[ExampleRecord] = []
    missing: list[ExampleRecord] = []
    for record in records if looks_up and knows else ():
        if not record.runnable:
            continue
        if not force and record.key in held.keys:
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

    def submit(self, record: ExampleRecord) -> None:
        """Hand ``record`` out unless a run of its key is already out."""
        assert record.key is not None and record.request is not None
        if record.key not in self.running:
            self.running[record.key] = retried(
                self.submit_to, record.request, record.key, lambda: self.closing)

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
        result = self.running.pop(key).result()
        if not harness_failure(result):
            self.cache.put(key, result)  # failures of the example are stored too
        self.durations[key] = result.seconds
        for record in self.waiting.pop(key, ()):
            yield Outcome(record, result, "run")

    def collect(self) -> Iterator[Outcome]:
        """Every waited-for run, as it finishes."""
        futures = {self.running[key]: key for key in self.waiting}
        for future in as_completed(futures):
            yield from self.finished(futures[future])

    def clear(self) -> None:
        self.running.clear()
        self.waiting.clear()


def retried(
    submit: Callable[[ExampleRequest, str], Future[ExampleResult]], request: ExampleRequest,
    key: str = "", closing: Callable[[], bool] = lambda: False,
) -> Future[ExampleResult]:
    """``submit(request, key)``, run once more when the harness failed under it (a warm parent
    that died is replaced by the next request), unless the build is closing."""
    out: Future[ExampleResult] = Future()

    def attempt(number: int) -> None:
        def ended(done: Future[ExampleResult]) -> None:
            result = done.result()
            failure = result.failure
            if failure is not None and failure.kind == "worker" and number < ATTEMPTS and not closing():
                attempt(number + 1)
            else:
                out.set_result(result)

        submit(request, key).add_done_callback(ended)

    attempt(1)
    return out


def obtain(planned: Plan, cache: Cache, executor: Executor) -> Iterator[Outcome]:
    """An outcome per record of ``planned``: stored results first, then runs as they end."""
    runs = Runs(cache, executor.submit)
    yield from runs.dispatch(planned)
    yield from runs.collect()


# -- one build ---------------------------------------------------------------------------


class StopBuild(Exception):
    """The build cannot go on (a cluster that cannot be reached, when asked to stop)."""


class Execution:
    """One build's runs between Sphinx's events: the executor's life, what each result is.

    Made when the configuration is read; every question about running is put to
    :func:`plan`. ``warn(message, subtype)`` reports what has no page (a cluster that
    was replaced by this machine).
    """

    def __init__(
        self, settings: EvalDemoConfig, cache: Cache, srcdir: str, *, jobs: int = 1,
        warn: Callable[[str, str], None] = lambda message, subtype: None,
        executors: Callable[[EvalDemoConfig, str], list[Executor]] | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.srcdir = srcdir
        self._warn = warn
        self._make = executors or open_executors
        self._jobs = jobs
        self._pid = os.getpid()  # a -j reader is a fork of this process
        self._reachable: bool | None = None
        self._fell_back = False  # the cluster could not be reached: this machine ran them
        #: the executor the runs go to, and every one opened for them (closed in order)
        self._executor: Executor | None = None
        self._opened: list[Executor] = []
        self._closer: weakref.finalize[..., Execution] | None = None
        self.runs = Runs(cache, self._submit)
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

    # -- the situation, asked in one place -------------------------------------------

    def situation(self, *, clean: bool = False, parallel_write: bool = False) -> Situation:
        s = self.settings
        return Situation(
            execute=s.execute, executor=s.executor, local_cluster=s.scheduler() == "local",
            reachable=self._reachable, unreachable=s.dask_unreachable, jobs=self._jobs,
            forked=os.getpid() != self._pid, parallel_write=parallel_write, clean=clean,
        )

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
            records, self.holdings(wait=at == "done"), self.situation(clean=clean, parallel_write=parallel_write),
            at=at, durations=self.durations(), scanned=scanned, submitted=self.runs.running,
        )

    # -- the events ------------------------------------------------------------------

    def configured(self, *, clean: bool) -> None:
        """The configuration is read: a clean build that will surely run starts now, so
        the worker's import of torch overlaps Sphinx's start-up."""
        scanned = int(examples_in(self.srcdir)) if clean else 0
        planned = self._plan((), "start", clean=clean, scanned=scanned)
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
            outcomes = _chain(self.runs.dispatch(planned), self.runs.collect)
            total = len(planned.runs) + len(planned.cached) + len(planned.missing)
            return self._take_all(progress(outcomes, total))
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

    def preload(self, recorded: Mapping[str, list[ExampleRecord]]) -> None:
        """Read every stored result the pages show from a remote store, in one batch, so
        forked ``-j`` writers find them in memory instead of each asking the store."""
        if self.settings.execute != "never" and not self.cache.local:
            self.cache.prefetch(r.key for records in recorded.values() for r in records if r.key)

    # -- what the pages show ---------------------------------------------------------

    @property
    def executes(self) -> bool:
        """Whether pages show results at all (``never`` shows code only)."""
        return self.settings.execute != "never"

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
            self._use(self._make(self.settings, self.srcdir))
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
                self._use(rest or self._make(_on_this_machine(self.settings), self.srcdir))
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
            problems += [(outcome.record.docname, line, message, kind) for message, line, kind in found]
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

    def closing_line(self) -> str | None:
        if not (self.ran or self.cached):
            return None
        workers = self.workers_started
        return (
            f"evaldemo: {self.ran} examples ran, {self.cached} came from the cache, "
            f"{self.failed} failed, {workers} worker{'' if workers == 1 else 's'} started "
            f"({self.seconds:.1f} s){f' on {self.where}' if self.ran else ''}"
        )

    def where_text(self) -> str:
        """Where this build's examples ran, for the execution report."""
        if not self.ran:
            return "No example ran in this build: every result came from the cache."
        return f"The examples that ran in this build ran on {self.where}."


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


def reads_ahead(settings: EvalDemoConfig, srcdir: str) -> bool:
    """Whether a remote cache's namespace is read while Sphinx starts (a snapshot): results
    will be looked up, the cache is an object store rather than a folder, and some source
    opens the directive."""
    location = os.fspath(settings.cache_dir or "")
    remote = "://" in location and not location.startswith("file://")
    return remote and settings.execute != "never" and examples_in(srcdir)


def open_executors(settings: EvalDemoConfig, srcdir: str) -> list[Executor]:
    """The executors the settings ask for, the one runs go to first.

    A local Dask cluster's workers are threads of this process: they share one local
    executor, opened (and closed) here beside the cluster's. Dask's module is imported
    only when asked for.
    """
    from .executors.local import LocalExecutor, default_size

    size = settings.workers or default_size()
    if settings.executor == "local":
        return [LocalExecutor(size, srcdir)]
    from .executors.dask import DaskExecutor

    address = settings.scheduler()
    inner = LocalExecutor(size, srcdir) if address == "local" else None
    return [DaskExecutor(address, srcdir, inner), *([inner] if inner is not None else [])]

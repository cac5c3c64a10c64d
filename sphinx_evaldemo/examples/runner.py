"""The Runner: the one owner of every execution decision in a build.

It holds the settings, the cache, the executor, the pending runs and the counters, and
answers each question about running examples: start workers before reading? run this
one now? where does this result come from? ``evaldemo_execute`` is read here and
nowhere else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from typing import Literal

from ..config import EvalDemoConfig
from .cache import Cache
from .diagnose import diagnose
from .executors import Executor, open_executor
from .model import ExampleRequest, ExampleResult, Failure, harness_failure
from .records import ExampleRecord
from .scan import directives_in

Source = Literal["run", "cache", "none"]  # "none": execute="cache" had no result


@dataclass(frozen=True, slots=True)
class Outcome:
    record: ExampleRecord
    result: ExampleResult
    source: Source

    @property
    def ran(self) -> bool:
        return self.source == "run"


#: One warning: ``(docname, line, message, subtype)``.
Problem = tuple[str, int, str, str]


class Runner:
    """Execution for one build: decisions, the executor's life, what each result is."""

    def __init__(
        self,
        settings: EvalDemoConfig,
        cache: Cache,
        srcdir: str,
        executor_factory: Callable[[EvalDemoConfig, str], Executor] = open_executor,
        executor: Executor | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.srcdir = srcdir
        self._executor_factory = executor_factory
        #: ``executor``: one already started for this build (:mod:`.headstart`)
        self._executor: Executor | None = executor
        self._main_pid = os.getpid()
        #: pages read in this build (whose examples run at env-updated)
        self.reading: set[str] = set()
        self.results: dict[str, ExampleResult] = {}
        self.sources: dict[str, Source] = {}
        #: runs submitted while Sphinx was still reading (serial builds only)
        self.pending: dict[str, Future[ExampleResult]] = {}
        #: runs not yet taken, by key, and the records that wait for each
        self._running: dict[str, Future[ExampleResult]] = {}
        self._waiting: dict[str, list[ExampleRecord]] = {}
        #: when :meth:`start_pages` left runs going (``None``: none are)
        self._started: float | None = None
        self.ran = 0
        self.cached = 0
        self.failed = 0
        self.seconds = 0.0
        self.workers_started = 0
        self.where = "this machine"
        self._first_submit: float | None = None
        #: seconds each example run in this build took, by ``docname:line`` (for scheduling)
        self.durations: dict[str, float] = {}
        self._durations: dict[str, float] | None = None  # the cache's record, read once
        self._feeds_at_once: bool | None = None
        #: whether the cache's trouble (``cache.problem``) has been reported
        self.cache_warned = False

    # -- the questions ------------------------------------------------------------

    @property
    def executes(self) -> bool:
        """Whether examples are run or looked up at all (``never`` shows code only)."""
        return reads_results(self.settings)

    @property
    def may_run(self) -> bool:
        """Whether this build may start an example (``cache`` and ``never`` do not)."""
        return self.settings.execute in ("auto", "force")

    def must_run(self, key: str) -> bool:
        """Whether a result must be computed now rather than taken from the cache."""
        return self.may_run and (self.settings.execute == "force" or not self.cache.has(key))

    def before_reading(
        self, docnames: Iterable[str], recorded: dict[str, list[ExampleRecord]],
        source_of: Callable[[str], str], parallel: int,
    ) -> None:
        """Start workers now when examples will surely run, so torch loads while Sphinx reads."""
        self.reading = set(docnames)
        if not self.may_run or not self.cache.listed():
            return  # a snapshot of a remote cache is on its way: see recorded()
        expected = self._runs_ahead(self.reading, recorded, source_of)
        if expected:
            self._open().prestart(expected, parallel=parallel)

    def _runs_ahead(
        self, docnames: set[str], recorded: dict[str, list[ExampleRecord]],
        source_of: Callable[[str], str],
    ) -> int:
        """About how many examples of the pages about to be read must run.

        Known pages are judged by the examples they had (a prose edit runs nothing, so
        it starts nothing); new pages, or a clean build, by whether the cache is empty
        and how often the source opens the directive.
        """
        cold = self.settings.execute == "force" or self.cache.empty()
        count = 0
        for docname in docnames:
            if docname in recorded and not cold:
                count += sum(
                    1 for record in recorded[docname]
                    if record.key is not None and not self.cache.has(record.key)
                )
            elif cold:
                count += directives_in(source_of(docname))
        return count

    def recorded(self, record: ExampleRecord) -> None:
        """A directive recorded an example: in a serial build, start it right away.

        The worker's torch import and the run then overlap Sphinx's reading of the
        remaining pages. Under ``-j`` the directive runs in a forked reader, where no
        executor may be started; those examples run in :meth:`run_pages`.
        """
        if os.getpid() != self._main_pid or record.key is None or record.request is None:
            return
        if record.key in self.pending or not self.may_run:
            return
        if self.settings.execute != "force" and not self.cache.listed():
            return  # not known yet whether it is stored: it is looked up after reading
        if not self.must_run(record.key):
            return
        if self.feeds_at_once:  # otherwise runs go out after reading, longest first
            self.pending[record.key] = self._submit(record.request)

    @property
    def feeds_at_once(self) -> bool:
        """Whether each run goes out as soon as its page is read.

        Always on one machine (``Executor.eager``). A cluster otherwise waits for the end
        of reading to hand the runs out longest first; with no duration recorded in the
        cache (a first build) there is nothing to sort by, so it is fed at once too.
        """
        if self._feeds_at_once is None:
            self._feeds_at_once = self._open().eager or not self._recorded_durations()
        return self._feeds_at_once

    def _recorded_durations(self) -> dict[str, float]:
        if self._durations is None:
            self._durations = self.cache.durations()
        return self._durations

    # -- running ------------------------------------------------------------------

    def _open(self) -> Executor:
        if self._executor is None:
            self._executor = self._executor_factory(self.settings, self.srcdir)
        return self._executor

    def _submit(self, request: ExampleRequest) -> Future[ExampleResult]:
        if self._first_submit is None:
            self._first_submit = time.perf_counter()
        return self._open().submit(request)

    def obtain(self, records: list[ExampleRecord]) -> Iterator[Outcome]:
        """Yield an outcome per record: cached results first, then fresh runs as they finish.

        Identical examples (same key) run once. Failures of the example are cached like
        successes; a failure of the harness (``worker``) is not: the next build runs it again.
        """
        yield from self._dispatch(records)
        keys = {self._running[key]: key for key in self._waiting}
        for future in as_completed(keys):
            yield from self._finished(keys[future])

    def _dispatch(self, records: list[ExampleRecord]) -> Iterator[Outcome]:
        """Outcomes known now (stored results); the rest go to ``_running``/``_waiting``."""
        if not self.executes:
            return
        self._running.update(self.pending)
        if self.settings.execute != "force":  # one batch of reads, not one per example
            self.cache.prefetch(r.key for r in records if r.key and r.key not in self._running)
        for record in longest_first(records, self._recorded_durations()):
            assert record.key is not None and record.request is not None
            if record.key not in self._running:
                hit = None if self.settings.execute == "force" else self.cache.get(record.key)
                if hit is not None:
                    yield Outcome(record, hit, "cache")
                    continue
                if not self.may_run:
                    failure = Failure("not-run", "no stored result for this example")
                    yield Outcome(record, ExampleResult(failure=failure), "none")
                    continue
                self._running[record.key] = self._submit(record.request)
            self._waiting.setdefault(record.key, []).append(record)

    def _finished(self, key: str) -> Iterator[Outcome]:
        """The run of ``key`` (waited for): cached, and an outcome per record that has it."""
        result = self._running.pop(key).result()
        if not harness_failure(result):
            self.cache.put(key, result)  # failures of the example are cached too
        for record in self._waiting.pop(key, ()):
            self.durations[f"{record.docname}:{record.lineno}"] = result.seconds
            yield Outcome(record, result, "run")

    def _take(self, outcome: Outcome) -> list[Problem]:
        """Keep an outcome for the page; its warnings."""
        key = outcome.record.key
        assert key is not None
        self.results[key] = outcome.result
        if self.sources.get(key) != "run":
            self.sources[key] = outcome.source
        self.ran += outcome.ran
        self.cached += outcome.source == "cache"
        found = diagnose(outcome.record, outcome.result)
        self.failed += bool(found)
        return [(outcome.record.docname, line, message, kind) for message, line, kind in found]

    def _read_records(self, recorded: dict[str, list[ExampleRecord]]) -> list[ExampleRecord]:
        return [
            record for docname in sorted(self.reading)
            for record in recorded.get(docname, ()) if record.runnable
        ]

    def run_pages(
        self, recorded: dict[str, list[ExampleRecord]],
        progress: Callable[[Iterator[Outcome], int], Iterable[Outcome]],
    ) -> list[Problem]:
        """Run (or fetch) the examples of the pages read in this build; return the warnings."""
        records = self._read_records(recorded)
        if not records or not self.executes:
            return []
        started = time.perf_counter()
        problems: list[Problem] = []
        try:
            for outcome in progress(self.obtain(records), len(records)):
                problems += self._take(outcome)
        except BaseException:
            self.close(abort=True)
            raise
        finally:
            self._ran_for(started)
        return sorted(problems, key=lambda p: (p[0], p[1]))  # page order

    def _ran_for(self, started: float) -> None:
        """The runs are over: close the executor, count the time since the first one."""
        self.close()
        self.seconds += time.perf_counter() - min(started, self._first_submit or started)
        self._first_submit = None

    # -- writing while examples run (serial builds) ---------------------------------

    def writes_while_running(self, parallel_write: bool) -> bool:
        """Whether pages may be written while examples still run: a serial build whose
        executor took the runs while Sphinx read (Sphinx's ``-j`` writers are forked,
        and nothing of the executor may run then)."""
        return not parallel_write and bool(self.pending) and self.feeds_at_once

    def start_pages(self, recorded: dict[str, list[ExampleRecord]]) -> list[Problem]:
        """Take what the cache has for the pages read; the runs go on (see :meth:`settle`)."""
        self._started = time.perf_counter()
        problems: list[Problem] = []
        for outcome in self._dispatch(self._read_records(recorded)):
            problems += self._take(outcome)
        return sorted(problems, key=lambda p: (p[0], p[1]))

    def settle(self, records: Iterable[ExampleRecord] | None = None) -> list[Problem]:
        """Wait for the runs ``records`` (all, with ``None``) still wait for; their warnings.

        A page calls this before it is written, so it waits for its own examples only.
        When the last run is in, the executor is closed.
        """
        keys = set(self._waiting) if records is None else {r.key for r in records if r.key} & set(self._waiting)
        problems: list[Problem] = []
        try:
            for key in sorted(keys, key=lambda k: [(r.docname, r.lineno) for r in self._waiting[k]]):
                for outcome in self._finished(key):
                    problems += self._take(outcome)
        except BaseException:
            self.close(abort=True)
            raise
        if self._started is not None and not self._waiting:
            self._ran_for(self._started)
            self._started = None
        return sorted(problems, key=lambda p: (p[0], p[1]))

    def preload(self, recorded: dict[str, list[ExampleRecord]]) -> None:
        """Read every stored result the pages show from a remote store, in one batch.

        Pages are written after this, maybe in forked ``-j`` writers, which then find
        the results in memory instead of each asking the store on its own.
        """
        if self.executes and not self.cache.local:
            self.cache.prefetch(r.key for records in recorded.values() for r in records if r.key)

    # -- what the pages show --------------------------------------------------------

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

    # -- the end ------------------------------------------------------------------

    def close(self, *, abort: bool = False) -> None:
        """Stop the executor; nothing of it is left running (Sphinx may fork next)."""
        if self._executor is not None:
            self.where = self._executor.where()
            self._executor.close(abort=abort)
            self.workers_started += self._executor.started
            self._executor = None
        self.pending.clear()
        self._running.clear()  # ended by now: each has its result (a harness failure at worst)
        self._waiting.clear()

    def finish(self, recorded: dict[str, list[ExampleRecord]], all_pages: set[str],
               *, failed: bool) -> list[Problem]:
        """Take the runs no written page waited for, close, and after a full build prune
        results no page uses any more; the warnings of those runs."""
        problems = [] if failed else self.settle()
        self.close(abort=failed)
        if not failed:
            self.cache.record_durations(self.durations)
        self._durations = self._feeds_at_once = None  # a next build reads them again
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


def reads_results(settings: EvalDemoConfig) -> bool:
    """Whether a build with these settings looks results up (``never`` shows code only)."""
    return settings.execute != "never"


def runs_surely(settings: EvalDemoConfig, *, empty_cache: bool) -> bool:
    """Whether a clean build with these settings runs every example it reads."""
    return settings.execute == "force" or (settings.execute == "auto" and empty_cache)


def longest_first(records: list[ExampleRecord], seconds: dict[str, float]) -> list[ExampleRecord]:
    """The records, those that took longest last time first (unknown ones after, in page order).

    A cluster's makespan approaches total work / workers only when the long examples
    do not start last.
    """
    order = {id(r): i for i, r in enumerate(records)}
    return sorted(
        records,
        key=lambda r: (-seconds.get(f"{r.docname}:{r.lineno}", -1.0), order[id(r)]),
    )

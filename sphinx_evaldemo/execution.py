"""The policy: which examples run, which come from the cache, and what each outcome means."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from typing import Literal

from . import claims
from .cache import Cache
from .config import ExecuteMode
from .model import ExampleRequest, ExampleResult, Failure
from .options import raised_as_expected


@dataclass(frozen=True, slots=True)
class Job:
    """One example on one page: the request, and where it sits (which does not decide it)."""

    key: str
    request: ExampleRequest
    docname: str
    lineno: int  # the directive's first line
    code_line: int  # the source line of the code's first line
    raises: str | None
    expect: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    job: Job
    result: ExampleResult
    source: Literal["run", "cache", "none"]  # "none": execute="cache" had no result

    @property
    def ran(self) -> bool:
        return self.source == "run"


def obtain(
    jobs: list[Job],
    *,
    cache: Cache,
    submit: Callable[[ExampleRequest], Future[ExampleResult]],
    mode: ExecuteMode,
    pending: dict[str, Future[ExampleResult]] | None = None,
) -> Iterator[Outcome]:
    """Yield an outcome per job: cached results first, then fresh runs as they finish.

    ``pending`` holds runs submitted earlier (while Sphinx was still reading).
    Identical examples (same key) run once. Failures are cached like successes.
    """
    if mode == "never":
        return
    running = dict(pending or {})
    waiting: dict[str, list[Job]] = {}
    for job in jobs:
        if job.key not in running:
            hit = cache.get(job.key) if mode != "force" else None
            if hit is not None:
                yield Outcome(job, hit, "cache")
                continue
            if mode == "cache":
                failure = Failure("not-run", "no stored result for this example")
                yield Outcome(job, ExampleResult(failure=failure), "none")
                continue
            running[job.key] = submit(job.request)
        waiting.setdefault(job.key, []).append(job)
    keys = {running[key]: key for key in waiting}
    for future in as_completed(keys):
        key = keys[future]
        result = future.result()
        cache.put(key, result)
        for job in waiting[key]:
            yield Outcome(job, result, "run")


_ADVICE = {
    "exception": "the traceback is on the page; fix the code, or add ':raises: {exc}' if the error is the point",
    "syntax": "fix the code",
    "model": "",  # the worker's message already says what to name
    "input": "fix the :input: expression",
    "exit": "remove the call: an example must not end the interpreter",
    "timeout": "make the example faster, or raise :timeout: (or evaldemo_timeout in conf.py)",
    "memory": "allocate less, or raise evaldemo_memory_limit (megabytes) in conf.py",
    "crash": "a new worker runs the next example",
    "worker": "check that torch imports in the Python that runs Sphinx",
    "not-run": "evaldemo_execute is 'cache': build once with 'auto' to store it",
}


def diagnose(job: Job, result: ExampleResult) -> list[tuple[str, int, str]]:
    """The warnings an outcome deserves: ``(message, source line, subtype)`` each."""
    failure = result.failure
    if failure is None:
        problems = [
            (f":expect: {verdict.claim}: {verdict.fact}", job.lineno, "claim")
            for verdict in claims.check(job.expect, result)
            if not verdict.held
        ]
        if result.truncated:
            problems.append((
                f"output cut at {job.request.max_output} characters "
                f"({', '.join(result.truncated)}); print less, or raise evaldemo_max_output in conf.py",
                job.lineno, "output",
            ))
        if job.raises is not None:
            expected = job.raises or "an exception"
            problems.append((
                f"expected {expected}, but nothing was raised; make the code raise, or remove :raises:",
                job.lineno, "raises",
            ))
        return problems
    if failure.kind == "exception" and raised_as_expected(job.raises, failure.exc_mro):
        if job.expect:
            return [(":expect: claims are checked on a run that ends normally; this one raised "
                     f"{failure.exc_type} (as :raises: expects), so remove :expect:", job.lineno, "claim")]
        return []
    line = job.code_line + failure.lineno - 1 if failure.lineno else job.lineno
    advice = _ADVICE[failure.kind].format(exc=failure.exc_type)
    if failure.kind == "crash" and failure.traceback:
        advice = f"its crash report is on the page; {advice}"
    if job.raises is not None and failure.kind == "exception":
        advice = f"expected {job.raises or 'an exception'} (:raises:), got {failure.exc_type}"
    message = f"{_headline(failure)}; {advice}" if advice else _headline(failure)
    return [(message, line, failure.kind)]


def _headline(failure: Failure) -> str:
    if failure.kind in ("exception", "syntax"):
        return f"example failed: {failure.message}"
    return failure.message

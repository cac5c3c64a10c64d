"""What an example's outcome means for the author: the warnings it deserves, with advice."""

from __future__ import annotations

from . import claims
from .model import ExampleResult, Failure
from .options import raised_as_expected
from .records import ExampleRecord

_ADVICE = {
    "exception": "the traceback is on the page; fix the code, or add ':raises: {exc}' if the error is the point",
    "syntax": "fix the code",
    "model": "",  # the worker's message already says what to name
    "input": "fix the :input: expression",
    "exit": "remove the call: an example must not end the interpreter",
    "timeout": "make the example faster, or raise :timeout: (or evaldemo_timeout in conf.py)",
    "memory": "allocate less, or raise evaldemo_memory_limit (megabytes) in conf.py",
    "crash": "the example ran in a process of its own, so nothing else was affected",
    "worker": "this is a failure of sphinx-evaldemo's harness, not of the example: it is not "
    "cached, and the next build runs the example again",
    "cluster": "check the Dask scheduler and its workers; the example runs again in the next build",
    "device": "build where a GPU is (or on a Dask cluster with a worker started with --resources GPU=1), share the cache, or use :device: auto",
    "not-run": "evaldemo_execute is 'cache': build once with 'auto' to store it",
}


def diagnose(job: ExampleRecord, result: ExampleResult) -> list[tuple[str, int, str]]:
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
                f"output cut at {result_limit(job)} characters "
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


def result_limit(record: ExampleRecord) -> int:
    return record.request.max_output if record.request is not None else 0

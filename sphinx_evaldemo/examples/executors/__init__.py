"""Where examples run: the interface every executor implements, and how one is chosen."""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ...config import EvalDemoConfig
    from ..model import ExampleRequest, ExampleResult


class Executor(Protocol):
    """Runs requests somewhere and hands back futures of their results.

    A future never raises: a failure to run (a dead process, an unreachable machine)
    comes back as an :class:`ExampleResult` whose ``failure`` says so.
    """

    #: Processes (or tasks' processes) started so far, for the closing line.
    started: int
    #: True: run each example as soon as a page records it (a serial build then overlaps
    #: the runs with reading). False: wait until every page is read, so the runs can be
    #: handed out longest first.
    eager: bool

    def prestart(self, expected: int, parallel: int = 1) -> None:
        """Get ready for about ``expected`` runs (an import of torch can start now)."""

    def submit(self, request: ExampleRequest) -> Future[ExampleResult]:
        """Queue one run."""

    def close(self, *, abort: bool = False) -> None:
        """Stop everything started; with ``abort``, end running examples now."""

    def where(self) -> str:
        """Where the examples ran, in words (the closing line and the report say it)."""


def open_executor(settings: EvalDemoConfig, srcdir: str) -> Executor:
    """The executor the settings ask for (Dask's module is imported only when asked for)."""
    if settings.executor == "dask":
        from .dask import DaskExecutor

        return DaskExecutor(settings, srcdir)
    from .local import LocalExecutor, default_size

    return LocalExecutor(settings.workers or default_size(), srcdir)

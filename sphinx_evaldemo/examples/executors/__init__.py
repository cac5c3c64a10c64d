"""Where examples run: the interface every executor implements.

An executor runs what it is given and reports. :func:`open_executors` opens the ones the
settings name; when they start, what runs where, and what to do when a cluster is out of
reach are decided in :mod:`..core`.
"""

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

    def prestart(self, expected: int, *, connect: bool) -> None:
        """Get ready for about ``expected`` runs (an import of torch can start now);
        with ``connect`` False, start no thread (Sphinx forks its readers next)."""

    def connect(self) -> str | None:
        """Reach what runs the examples, waiting if need be: ``None``, or why it cannot."""

    def submit(self, request: ExampleRequest, key: str = "") -> Future[ExampleResult]:
        """Queue one run. ``key``: the result's key, as the build computed it (a name for
        the run, where the executor shows one; no executor computes it)."""

    def close(self, *, abort: bool = False) -> None:
        """Stop everything started; with ``abort``, end running examples now."""

    def where(self) -> str:
        """Where the examples ran, in words (the closing line and the report say it)."""


def open_executors(settings: EvalDemoConfig, srcdir: str) -> list[Executor]:
    """The executors the settings ask for, the one runs go to first.

    A local Dask cluster's workers are threads of this process: they share one local
    executor, opened (and closed) here beside the cluster's. Dask's module is imported
    only when asked for.
    """
    from .local import LocalExecutor, default_size

    size = settings.workers or default_size()
    if settings.executor == "local":
        return [LocalExecutor(size, srcdir)]
    from .dask import DaskExecutor

    address = settings.scheduler()
    inner = LocalExecutor(size, srcdir) if address == "local" else None
    return [DaskExecutor(address, srcdir, inner), *([inner] if inner is not None else [])]

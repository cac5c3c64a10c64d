"""Where examples run: the interface every executor implements.

An executor runs what it is given and reports; which one, when, and what to do when it
cannot run anything (a cluster out of reach) is decided in :mod:`..core`.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
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

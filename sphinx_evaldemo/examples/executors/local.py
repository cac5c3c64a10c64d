"""Examples on this machine: a warm parent process that runs each one in a fresh child.

The build starts one warm parent (:mod:`sphinx_evaldemo.examples.worker`), which imports
torch once and forks a child per example (or, where fork is unsafe, starts one fresh);
this module talks to it through two pipes and one reading thread. A parent that dies is
replaced by the next request; the examples it was running end as failures of the harness
(``worker``), which the build runs once more (:mod:`..core`). Usable from any process,
not only from Sphinx; :meth:`LocalExecutor.close` leaves nothing running.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from concurrent.futures import Future

from ..model import ExampleRequest, ExampleResult
from .warm import (
    STOPPED_MARGIN,
    WATCH_INTERVAL,
    _add_tunables,
    _harness,
    _ParentProcess,
    _Pending,
    _Starter,
    added_paths,
)


def start_method() -> str:
    """``fork`` on Linux; a fresh process per example elsewhere.

    macOS's system libraries (and Windows, which has no fork) make forking a process
    that imported torch unsafe; the warm parent also falls back to ``spawn`` by itself
    when it finds a thread running before its first fork.
    """
    return "fork" if sys.platform.startswith("linux") else "spawn"


__all__ = ["STOPPED_MARGIN", "WATCH_INTERVAL", "LocalExecutor", "_add_tunables", "default_size", "start_method"]


class LocalExecutor:
    """One warm parent on this machine, running up to ``size`` examples at once."""

    def __init__(self, size: int, cwd: str, start: str | None = None,
                 paths: list[str] | None = None) -> None:
        self.size = max(1, size)
        self.cwd = cwd
        #: folders put first on the examples' path: conf.py's (by default), or the build's
        #: as a Dask task brought them
        self.paths = added_paths(sys.path) if paths is None else paths
        self.start = start or start_method()
        self.started = 0
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._parent: _ParentProcess | None = None
        self._parents: list[_ParentProcess] = []
        self._broken: str | None = None  # why no parent can start, once one could not
        self._broken_details = ""  # what that parent wrote to stderr
        self._closed = False
        self._starter = _Starter()

    def _current(self) -> _ParentProcess:
        """The live warm parent, started now if there is none (the lock is held)."""
        if self._parent is None or self._parent.ended:
            self._parent = _ParentProcess(self.cwd, self.size, self.start, self._parent_ended, self._starter,
                                          self.paths)
            self._parents.append(self._parent)
            self.started += 1
        return self._parent

    def prestart(self, expected: int, *, connect: bool = True) -> None:
        """Start the warm parent now (it starts no thread here), so its torch import gets
        a head start."""
        if expected > 0:
            with self._lock:
                if not self._closed:
                    self._current()

    def submit(self, request: ExampleRequest, key: str = "") -> Future[ExampleResult]:
        future: Future[ExampleResult] = Future()
        self._send(_Pending(request, future))
        return future

    def run(self, request: ExampleRequest) -> ExampleResult:
        """Run one example and wait for it."""
        return self.submit(request).result()

    def connect(self) -> str | None:
        return None  # this machine is always there; a parent that cannot start says so per run

    def _send(self, pending: _Pending) -> None:
        while True:
            with self._lock:
                failed = self._broken or ("the executor was closed" if self._closed else None)
                try:
                    parent = None if failed else self._current()
                except OSError as error:  # no process can be started (too many open files...)
                    parent, failed = None, f"the worker process could not be started: {error}"
            if parent is None:
                pending.future.set_result(_harness(failed or "", self._broken_details))
                return
            if parent.send(next(self._ids), pending):
                return

    def _parent_ended(self, parent: _ParentProcess, pending: list[_Pending]) -> None:
        """Called from the ended parent's thread: its examples end, saying why."""
        if not parent.ready and not parent.closing:
            with self._lock:
                self._broken = parent.reason
                self._broken_details = parent.stderr_tail()
        message = "the build stopped before this example finished" if parent.closing else parent.reason
        for item in pending:
            item.future.set_result(_harness(message, self._broken_details))

    def close(self, *, abort: bool = False) -> None:
        """Stop the warm parent: it kills every example's process group, then itself.

        Running examples end now (``abort`` or not: at a normal close none is left).
        The reading threads are joined before this returns, so nothing is left running
        when Sphinx forks its ``-j`` writers.
        """
        with self._lock:
            self._closed = True
            parents, self._parents, self._parent = self._parents, [], None
        for parent in parents:
            parent.close()
        self._starter.stop()

    def where(self) -> str:
        return "this machine"

    @property
    def pids(self) -> list[int]:
        """The warm parents' process ids (for tests and diagnostics)."""
        with self._lock:
            return [parent.process.pid for parent in self._parents if parent.process.poll() is None]


def default_size() -> int:
    """One example at a time per CPU this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1

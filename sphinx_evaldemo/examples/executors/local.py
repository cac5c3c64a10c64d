"""Examples on this machine: a warm parent process that runs each one in a fresh child.

The build starts one warm parent (:mod:`sphinx_evaldemo.examples.worker`), which imports
torch once and forks a child per example (or, where fork is unsafe, starts one fresh);
this module talks to it through two pipes and one reading thread. A parent that dies is
replaced by the next request; the examples it was running end as failures of the harness
(``worker``), which the build runs once more (:mod:`..core`). Usable from any process,
not only from Sphinx; :meth:`LocalExecutor.close` leaves nothing running.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import select
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model import ExampleRequest, ExampleResult, Failure, result_from_dict
from ..worker.processes import STARTUP_TIMEOUT  # a warm parent imports torch like a child

#: Seconds a closing warm parent gets to kill its children and exit.
CLOSE_GRACE = 3.0
#: glibc's malloc settings for the warm parent (others ignore them). ``hugetlb`` (2.35
#: and later) backs its heap, where torch's import leaves about 80 MB, with transparent
#: huge pages: each fork then copies a few hundred page-table entries instead of about
#: 20,000, and each child's exit frees as few. ``trim_threshold`` keeps its heap from
#: being handed back and taken again between examples, which with huge pages means a
#: fresh 2 MB page to clear each time. The worker takes them out of its environment
#: again (``--tunables``): what the examples start gets the user's own.
TUNABLES = {"glibc.malloc.hugetlb": "1", "glibc.malloc.trim_threshold": str(512 << 20)}
#: The package's parent folder, so the worker imports this very copy of the package.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


def start_method() -> str:
    """``fork`` on Linux; a fresh process per example elsewhere.

    macOS's system libraries (and Windows, which has no fork) make forking a process
    that imported torch unsafe; the warm parent also falls back to ``spawn`` by itself
    when it finds a thread running before its first fork.
    """
    return "fork" if sys.platform.startswith("linux") else "spawn"


@dataclass
class _Pending:
    request: ExampleRequest
    future: Future[ExampleResult]
    pid: int | None = None  # the child's pid, which is also its process group's id


def _harness(message: str, traceback: str = "") -> ExampleResult:
    """A failure of the harness, not of the example (never cached)."""
    return ExampleResult(failure=Failure("worker", message, traceback))


def _kill_group(pid: int | None) -> None:
    if pid is not None:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)


class _ParentProcess:
    """One warm parent process, and the two threads that feed it and read its answers."""

    def __init__(self, cwd: str, size: int, start: str,
                 on_end: Callable[[_ParentProcess, list[_Pending]], None]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONHASHSEED"] = "0"
        env["PYTHONUNBUFFERED"] = "1"
        added = _add_tunables(env)
        tunables = ["--tunables", added] if added else []
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sphinx_evaldemo.examples.worker", "--size", str(size), "--start", start, *tunables],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=cwd, env=env,
            start_new_session=True,  # Ctrl-C in the terminal reaches Sphinx, which stops us
        )
        self._on_end = on_end
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._reader: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.ready = False
        self.ended = False
        self.closing = False
        self.reason = ""
        self.start = start

    def send(self, ident: int, pending: _Pending) -> bool:
        """Hand a request over; ``False`` when this parent has already ended."""
        with self._lock:
            if self.ended or self.closing:
                return False
            self._pending[ident] = pending
            if self._reader is None:  # first use: never before Sphinx's -j forks
                self._reader = threading.Thread(target=self._read, name="evaldemo-read", daemon=True)
                self._writer = threading.Thread(target=self._write, name="evaldemo-write", daemon=True)
                self._reader.start()
                self._writer.start()
            line = json.dumps({"id": ident, "request": pending.request.to_dict()}) + "\n"
            self._outbox.put(line.encode())
            return True

    def _write(self) -> None:
        """Feed the requests to the parent; a full pipe (the parent still importing torch)
        holds up this thread, never the build's."""
        stdin = self.process.stdin
        assert stdin is not None
        while (line := self._outbox.get()) is not None:
            try:
                stdin.write(line)
                stdin.flush()
            except (OSError, ValueError):
                pass  # the parent died: the reader finds out and hands the requests on
        with contextlib.suppress(OSError, ValueError):
            stdin.close()

    # -- the reading thread ----------------------------------------------------------

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        fd = stdout.fileno()
        buffer = b""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                if not self.ready and not selector.select(max(0.0, deadline - time.monotonic())):
                    self.reason = f"the worker process did not start within {STARTUP_TIMEOUT:g} s"
                    self.process.kill()
                    break
                try:
                    chunk = os.read(fd, 1 << 20)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._dispatch(json.loads(line))
        self._end()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("ready"):
            self.ready = True
            self.start = str(message.get("start", self.start))
            return
        with self._lock:
            pending = self._pending.get(message["id"])
            if pending is None:
                return
            if "pid" in message:
                pending.pid = int(message["pid"])
                return
            del self._pending[message["id"]]
        if "result" in message:
            result = _result(message["result"])
        else:
            result = _harness(str(message.get("harness", "the warm parent sent an unknown answer")))
        pending.future.set_result(result)

    def _end(self) -> None:
        """The process ended: kill what it was running and hand the rest on."""
        code = self.process.wait()
        with self._lock:
            self.ended = True
            pending = list(self._pending.values())
            self._pending.clear()
        for item in pending:
            _kill_group(item.pid)
        if not self.reason:
            self.reason = _ended_how(code, self.ready, self.stderr_tail())
        self._on_end(self, pending)

    def _signal(self, number: int) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.send_signal(number)

    def _exits_within(self, seconds: float) -> bool:
        return _exited_within(self.process, seconds)

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            return self._stderr.read()[-4000:].decode(errors="replace").strip()
        return ""

    # -- the end ------------------------------------------------------------------

    def close(self) -> None:
        """Ask the parent to stop (it kills its children), make sure it did, clean up.

        A serving parent gets the end of its requests and cleans up at once; one still
        importing torch reads none yet, so it gets SIGTERM. A parent that has not
        exited within ``CLOSE_GRACE`` gets SIGTERM, then SIGKILL.
        """
        with self._lock:
            self.closing = True
        self._outbox.put(None)  # the writer closes stdin when it gets here
        if self._writer is None:
            with contextlib.suppress(OSError, ValueError):
                if self.process.stdin is not None:
                    self.process.stdin.close()
        if not self.ready:
            self._signal(signal.SIGTERM)
        if not self._exits_within(CLOSE_GRACE):
            self._signal(signal.SIGTERM)
            if not self._exits_within(CLOSE_GRACE):
                self._signal(signal.SIGKILL)
        self.process.wait()
        if self._reader is not None and self._writer is not None:
            self._writer.join()
            self._reader.join()
        else:
            self._end()
        with contextlib.suppress(OSError):
            if self.process.stdout is not None:
                self.process.stdout.close()
        self._stderr.close()


def _add_tunables(env: dict[str, str]) -> str:
    """Add to ``env`` those of :data:`TUNABLES` the user did not set (Linux); what was added."""
    current = env.get("GLIBC_TUNABLES", "")
    if not sys.platform.startswith("linux"):
        return ""
    added = ":".join(f"{name}={value}" for name, value in TUNABLES.items() if name not in current)
    if added:
        env["GLIBC_TUNABLES"] = f"{current}:{added}" if current else added
    return added


def _exited_within(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether ``process`` ends within ``seconds``: woken by its exit where Linux can
    (``Popen.wait(timeout)`` polls, at ever longer intervals, and overshoots by up to
    half its wait)."""
    if process.poll() is not None:
        return True
    try:
        fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or already reaped
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)


def _ended_how(code: int, ready: bool, stderr: str) -> str:
    if code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with status {code}"
    if not ready:
        return f"the worker process could not start (is torch installed for this Python?): it {how}"
    return f"the warm parent process that starts each example's process {how}"


def _result(data: Any) -> ExampleResult:
    """The result the warm parent sent, or a harness failure if it is not one."""
    try:
        if not isinstance(data, dict) or not data.keys() >= ExampleResult.__dataclass_fields__.keys():
            raise ValueError("fields missing")
        return result_from_dict(data)
    except (ValueError, TypeError, KeyError) as error:
        return _harness(f"the warm parent sent something that is not an example result ({error})")


class LocalExecutor:
    """One warm parent on this machine, running up to ``size`` examples at once."""

    def __init__(self, size: int, cwd: str, start: str | None = None) -> None:
        self.size = max(1, size)
        self.cwd = cwd
        self.start = start or start_method()
        self.started = 0
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._parent: _ParentProcess | None = None
        self._parents: list[_ParentProcess] = []
        self._broken: str | None = None  # why no parent can start, once one could not
        self._broken_details = ""  # what that parent wrote to stderr
        self._closed = False

    def _current(self) -> _ParentProcess:
        """The live warm parent, started now if there is none (the lock is held)."""
        if self._parent is None or self._parent.ended:
            self._parent = _ParentProcess(self.cwd, self.size, self.start, self._parent_ended)
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

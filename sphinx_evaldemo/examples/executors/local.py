"""Worker processes: start them, reuse them, time them out, replace the dead."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from ..model import ExampleRequest, ExampleResult, Failure

#: How long a new worker may take to import torch before it is given up on.
STARTUP_TIMEOUT = 180.0
#: Seconds an example must have run before a further worker is worth its start-up.
GROW_AFTER = 0.5
#: Examples known in advance that justify starting one more worker before reading.
EXAMPLES_PER_WORKER = 30
#: The package's parent folder, so a worker imports this very copy of the package.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


class WorkerDied(Exception):
    """The worker process ended or stopped answering."""


class Worker:
    """One child process running :mod:`sphinx_evaldemo.worker`."""

    def __init__(self, cwd: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONHASHSEED"] = "0"
        env["PYTHONUNBUFFERED"] = "1"
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the worker
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sphinx_evaldemo.examples.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=cwd,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal reaches Sphinx, which stops us
        )
        self._buffer = b""
        self._ready = False
        self.busy_since: float | None = None  # when the running example started

    def wait_ready(self) -> None:
        if not self._ready:
            self._readline(time.monotonic() + STARTUP_TIMEOUT)
            self._ready = True

    def run(self, request: ExampleRequest) -> ExampleResult:
        """Run one example; a timeout or a death kills the process and says why."""
        try:
            self.wait_ready()
        except TimeoutError:
            self.kill()
            message = f"the worker process did not start within {STARTUP_TIMEOUT:g} s"
            return ExampleResult(failure=Failure("worker", message))
        except WorkerDied:
            message = "the worker process could not start (is torch installed for this Python?)"
            return ExampleResult(failure=Failure("worker", message, self._death().traceback))
        stdin = self.process.stdin
        assert stdin is not None
        started = self.busy_since = time.monotonic()
        try:
            return self._exchange(request, stdin, started)
        finally:
            self.busy_since = None

    def _exchange(self, request: ExampleRequest, stdin: IO[bytes], started: float) -> ExampleResult:
        try:
            stdin.write((json.dumps(request.to_dict()) + "\n").encode())
            stdin.flush()
            line = self._readline(started + request.timeout)
        except TimeoutError:
            self.kill()
            return ExampleResult(
                failure=Failure("timeout", f"timed out after {request.timeout:g} s"),
                seconds=request.timeout,
            )
        except (WorkerDied, BrokenPipeError):
            return ExampleResult(failure=self._death(), seconds=time.monotonic() - started)
        return ExampleResult.from_json(line)

    def _readline(self, deadline: float) -> str:
        """One protocol line; a dead or killed worker is noticed within a fifth of a second.

        (A pipe closed by :meth:`kill` from another thread can vanish from the
        selector without an event, so the process itself is checked as well.)
        """
        stdout = self.process.stdout
        if stdout is None or stdout.closed:
            raise WorkerDied
        fd = stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                if not selector.select(min(remaining, 0.2)):
                    if self.process.poll() is not None or stdout.closed:
                        raise WorkerDied
                    continue
                try:
                    chunk = os.read(fd, 1 << 20)
                except OSError:
                    raise WorkerDied from None
                if not chunk:
                    raise WorkerDied
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def _death(self) -> Failure:
        code = self.process.wait()
        self._stderr.seek(0)
        tail = self._stderr.read()[-4000:].decode(errors="replace")
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            how = f"the worker process was killed by {name}"
        else:
            how = f"the worker process exited with status {code} (os._exit or a crash in native code)"
        where = re.findall(r'File "<example>", line (\d+)', tail)
        return Failure(
            "crash",
            how + " while running this example",
            traceback=_crash_report(tail),
            lineno=int(where[0]) if where else None,
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()
        self.close()

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self.alive:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()


def _crash_report(stderr: str) -> str:
    """What faulthandler wrote about the crashing thread, down to the example's frames.

    Thread ids and other threads (the worker's own watchdog) change from run to run
    and are left out, so the page is the same for every build.
    """
    marker = stderr.rfind("Fatal Python error")
    if marker < 0:
        return stderr.strip()
    kept = []
    skipping = False
    for line in stderr[marker:].splitlines():
        if line.startswith("Thread 0x"):
            skipping = True
        elif line.startswith("Current thread"):
            skipping = False
            line = "Current thread (most recent call first):"
        if skipping or line.startswith("Extension modules:"):
            continue
        if "sphinx_evaldemo" in line or "<frozen runpy>" in line or "threading.py" in line:
            continue
        kept.append(line)
    return "\n".join(kept).strip() + "\n"


class LocalExecutor:
    """Worker processes on this machine: a fixed number, started on demand, replaced when they die."""

    def __init__(self, size: int, cwd: str, factory: Callable[[str], Worker] = Worker) -> None:
        self.size = max(1, size)
        self.cwd = cwd
        self._factory = factory
        self._idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()
        self._all: list[Worker] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="evaldemo")
        self.started = 0

    def _spawn(self) -> None:
        worker = self._factory(self.cwd)
        self._all.append(worker)
        self._idle.put(worker)
        self.started += 1

    def prestart(self, expected: int, parallel: int = 1) -> None:
        """Start worker processes now (no thread), so their torch import gets a head start.

        One worker for a few examples; a second (up to ``size``) once ``expected``
        reaches ``EXAMPLES_PER_WORKER`` each, and as many as ``-j`` asks for when
        there is more than one example: an import on an idle core costs no wall time.
        """
        wanted = 1 + expected // EXAMPLES_PER_WORKER
        if expected > 1:
            wanted = max(wanted, parallel)
        with self._lock:
            while len(self._all) < min(self.size, wanted):
                self._spawn()

    def _take(self) -> Worker:
        """An idle live worker; a new one only when none exists or growing pays off."""
        while True:
            with self._lock:
                if not self._all:
                    self._spawn()
            try:
                worker = self._idle.get(timeout=0.05)
            except queue.Empty:
                with self._lock:
                    if len(self._all) < self.size and self._worth_growing():
                        self._spawn()
                continue
            if worker.alive:
                return worker
            worker.close()  # died or was killed by a timeout: replace it
            with self._lock:
                self._all.remove(worker)
                self._spawn()

    def _worth_growing(self) -> bool:
        """Another worker costs a torch import; start one only for examples that are slow.

        Quick examples (the usual case) finish on one worker before a second one would
        have imported torch; an example running past ``GROW_AFTER`` seconds shows that
        the work is heavy enough to share.
        """
        now = time.monotonic()
        return any(
            worker.busy_since is not None and now - worker.busy_since > GROW_AFTER
            for worker in self._all
        )

    def run(self, request: ExampleRequest) -> ExampleResult:
        worker = self._take()
        try:
            return worker.run(request)
        finally:
            self._idle.put(worker)

    def submit(self, request: ExampleRequest) -> Future[ExampleResult]:
        """Queue a request; a worker is started for it if none is free (up to ``size``)."""
        return self._executor.submit(self._run_safely, request)

    def _run_safely(self, request: ExampleRequest) -> ExampleResult:
        try:
            return self.run(request)
        except Exception as exc:  # noqa: BLE001  # one example never loses the build
            return ExampleResult(failure=Failure("worker", f"{type(exc).__name__}: {exc}"))

    def close(self, *, abort: bool = False) -> None:
        """Stop every worker; with ``abort``, kill them first so running examples end now.

        The feeding threads are joined before this returns, so nothing is left running
        when Sphinx forks its ``-j`` writers.
        """
        with self._lock:
            workers = list(self._all)
        if abort:
            for worker in workers:
                worker.kill()
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.kill()  # nothing left to say: no need to wait for torch to shut down

    def where(self) -> str:
        return "this machine"


def default_size() -> int:
    """One worker per CPU this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1

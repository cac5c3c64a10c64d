"""The build's side of one warm parent process: started, fed requests, read by one
thread, watched for a stop or a wedge, and ended with nothing left running.

:class:`~.local.LocalExecutor` keeps one at a time and replaces it when it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
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

from ..model import ExampleRequest, ExampleResult, Failure, decode, encode
from ..worker.capture import visible  # what the parent wrote is shown, escaped as any output
from ..worker.processes import STARTUP_TIMEOUT  # a warm parent imports torch like a child
from . import ending

#: Seconds a closing warm parent gets to kill its children and exit.
CLOSE_GRACE = 3.0
#: How often the reading thread looks for examples whose answer is overdue.
WATCH_INTERVAL = 0.5
#: The warm parent answers for an example by its timeout (it kills the example's process
#: then). Past the timeout plus this margin, a warm parent found stopped (SIGSTOP: an
#: example stopped it) is killed, and the example is reported as having done it...
STOPPED_MARGIN = 5.0
#: ... and past the timeout plus this one, a warm parent that runs but does not answer
#: (wedged) is killed too. Where each example's process is started fresh (``spawn``),
#: both margins also include its start-up, up to ``STARTUP_TIMEOUT``.
WEDGED_MARGIN = 30.0
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


@dataclass
class _Pending:
    request: ExampleRequest
    future: Future[ExampleResult]
    pid: int | None = None  # the child's pid, which is also its process group's id
    started: float | None = None  # when the warm parent said the child had the request
    sent: float = 0.0  # when it was handed to a warm parent


def _harness(message: str, traceback: str = "") -> ExampleResult:
    """A failure of the harness, not of the example (never cached)."""
    return ExampleResult(failure=Failure("worker", message, traceback))


class _Starter:
    """Starts the warm parents from a thread that lasts as long as the executor.

    The warm parent asks the kernel to wake it (SIGCONT) when the build dies, so that
    even a stopped one notices and cleans up; Linux ties that request to the *thread*
    that started the process. The build's main thread lasts; a reading thread that
    starts a replacement after a parent died does not, so those starts are handed to
    this thread, which is stopped when the executor closes.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, job: Callable[[], Any]) -> Any:
        if threading.current_thread() is threading.main_thread():
            return job()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="evaldemo-start", daemon=True)
            self._thread.start()
        done: Future[Any] = Future()
        self._jobs.put((job, done))
        return done.result()

    def _serve(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, done = item
            try:
                done.set_result(job())
            except BaseException as error:  # noqa: BLE001  # handed to the thread that asked
                done.set_exception(error)

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None


class _ParentProcess:
    """One warm parent process, and the two threads that feed it and read its answers."""

    def __init__(self, cwd: str, size: int, start: str,
                 on_end: Callable[[_ParentProcess, list[_Pending]], None], starter: _Starter,
                 paths: list[str]) -> None:
        env = dict(os.environ)
        # conf.py's own entries (``sys.path.insert(0, "../src")`` for autodoc) reach the
        # examples too; they are not part of any result's key
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [
            _PACKAGE_ROOT, *paths, env.get("PYTHONPATH")]))
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONHASHSEED"] = "0"
        env["PYTHONUNBUFFERED"] = "1"
        added = _add_tunables(env)
        tunables = ["--tunables", added] if added else []
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the process
        self.process: subprocess.Popen[bytes] = starter.run(lambda: subprocess.Popen(
            [sys.executable, "-m", "sphinx_evaldemo.examples.worker", "--size", str(size), "--start", start, *tunables],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=cwd, env=env,
            start_new_session=True,  # Ctrl-C in the terminal reaches Sphinx, which stops us
        ))
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
        self._watched = time.monotonic()
        self._stopped_since: float | None = None  # when it was first seen stopped with examples waiting
        self._ready_at = 0.0

    def send(self, ident: int, pending: _Pending) -> bool:
        """Hand a request over; ``False`` when this parent has already ended."""
        with self._lock:
            if self.ended or self.closing:
                return False
            self._pending[ident] = pending
            pending.sent = time.monotonic()
            if self._reader is None:  # first use: never before Sphinx's -j forks
                self._reader = threading.Thread(target=self._read, name="evaldemo-read", daemon=True)
                self._writer = threading.Thread(target=self._write, name="evaldemo-write", daemon=True)
                self._reader.start()
                self._writer.start()
            line = json.dumps({"id": ident, "request": encode(pending.request)}) + "\n"
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
                wait = WATCH_INTERVAL if self.ready else min(WATCH_INTERVAL, max(0.0, deadline - time.monotonic()))
                if not selector.select(wait):
                    if not self.ready and time.monotonic() >= deadline:
                        self.reason = f"the worker process did not start within {STARTUP_TIMEOUT:g} s"
                        self.process.kill()
                        break
                    self._watch()
                    continue
                self._watch()
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
            self._ready_at = time.monotonic()
            self.start = str(message.get("start", self.start))
            return
        with self._lock:
            pending = self._pending.get(message["id"])
            if pending is None:
                return
            if "pid" in message:
                pending.pid = int(message["pid"])
                pending.started = time.monotonic()
                return
            del self._pending[message["id"]]
        if "result" in message:
            result = _result(message["result"])
        else:
            result = _harness(str(message.get("harness", "the warm parent sent an unknown answer")))
        pending.future.set_result(result)

    def _watch(self) -> None:
        """Every wait of the build has a bound: an example whose answer is overdue means
        a warm parent that is stopped or wedged. It is killed (its children die with it),
        the overdue examples are reported as failures of their own, and the others run
        again on a replacement (see ``_end``)."""
        now = time.monotonic()
        paused, self._watched = now - self._watched, now
        with self._lock:
            waiting = bool(self._pending)
            handed = min((max(item.sent, self._ready_at) for item in self._pending.values()), default=now)
            started = [item for item in self._pending.values() if item.started is not None]
            if paused > 4 * WATCH_INTERVAL:  # this process itself was paused (Ctrl-Z): not the parent
                for item in started:
                    item.started = (item.started or now) + paused
                self._stopped_since = None
                return
            if not waiting or self.ended:
                self._stopped_since = None
                return
        if not started:
            # Examples wait and none runs, so each should have started at once: a parent
            # stopped from outside (or wedged) would hold them for ever. It is replaced,
            # and they run on the new one, blamed on nobody.
            if not self.ready:
                return
            since = (self._stopped_since or now) if ending.stopped(self.process.pid) else None
            self._stopped_since = since
            if since is not None and now - since > STOPPED_MARGIN:
                self.reason = "the warm parent process that starts each example's process was stopped, and was killed"
                self._signal(signal.SIGKILL)
            elif now - handed > WEDGED_MARGIN + (STARTUP_TIMEOUT if self.start != "fork" else 0.0):
                self.reason = "the warm parent process that starts each example's process did not start them, and was killed"
                self._signal(signal.SIGKILL)
            return
        extra = STARTUP_TIMEOUT if self.start != "fork" else 0.0
        if all(now < (item.started or now) + item.request.timeout + STOPPED_MARGIN + extra for item in started):
            return
        stopped = ending.stopped(self.process.pid)
        margin = (STOPPED_MARGIN if stopped else WEDGED_MARGIN) + extra
        with self._lock:
            overdue = [
                self._pending.pop(ident) for ident, item in list(self._pending.items())
                if item.started is not None and now >= item.started + item.request.timeout + margin
            ]
        if not overdue:
            return
        how = ("was stopped (SIGSTOP, by the example or a debugger)" if stopped
               else "ran but did not answer (blocked)")
        for item in overdue:
            ending.kill_group(item.pid)
            message = (
                f"the process that runs the examples (pid {self.process.pid}) {how} while this "
                f"example ran: it did not answer within the example's timeout of "
                f"{item.request.timeout:g} s plus {margin:g} s, and was killed"
            )
            item.future.set_result(ExampleResult(
                failure=Failure("crash", message), seconds=round(now - (item.started or now), 4)))
        self.reason = f"the warm parent process that starts each example's process {how}, and was killed"
        self._signal(signal.SIGKILL)

    def _end(self) -> None:
        """The process ended: kill what it was running and hand the rest on."""
        if not ending.exited_within(self.process, CLOSE_GRACE):  # its pipe closed, it did not exit
            self._signal(signal.SIGKILL)
        code = self.process.wait()
        with self._lock:
            self.ended = True
            pending = list(self._pending.values())
            self._pending.clear()
        for item in pending:
            ending.kill_group(item.pid)
        if not self.reason:
            self.reason = ending.ended_how(code, self.ready, self.stderr_tail())
        self._on_end(self, pending)

    def _signal(self, number: int) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.send_signal(number)

    def _exits_within(self, seconds: float) -> bool:
        return ending.exited_within(self.process, seconds)

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            return visible(self._stderr.read()[-4000:].decode(errors="replace").strip())
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
        if ending.stopped(self.process.pid):  # it would never act on a request or a SIGTERM
            self._signal(signal.SIGKILL)
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


def added_paths(path: list[str]) -> list[str]:
    """The entries of ``path`` (the build's ``sys.path``, as ``conf.py`` left it) that a
    fresh interpreter lacks: neither under the interpreter's own folders (the standard
    library, site-packages, the ``sphinx-build`` script's folder) nor empty. Absolute,
    since the worker starts in another folder."""
    own = {os.path.realpath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix,
                                          sys.base_exec_prefix)}
    found: list[str] = []
    for entry in path:
        if not isinstance(entry, str) or not entry:
            continue
        absolute = os.path.normpath(Path(entry).absolute())
        real = os.path.realpath(absolute)
        if any(real == p or real.startswith(p + os.sep) for p in own) or absolute in found:
            continue
        found.append(absolute)
    return found


def _add_tunables(env: dict[str, str]) -> str:
    """Add to ``env`` those of :data:`TUNABLES` the user did not set (Linux); what was added."""
    current = env.get("GLIBC_TUNABLES", "")
    if not sys.platform.startswith("linux"):
        return ""
    added = ":".join(f"{name}={value}" for name, value in TUNABLES.items() if name not in current)
    if added:
        env["GLIBC_TUNABLES"] = f"{current}:{added}" if current else added
    return added


def _result(data: Any) -> ExampleResult:
    """The result an example's process sent, or a harness failure if it is not one: the one
    place a fresh result is checked, where it enters the build."""
    try:
        return decode(ExampleResult, data)
    except ValueError as error:
        return _harness(f"the example's process sent something that is not an example result ({error})")

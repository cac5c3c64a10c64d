"""The warm parent: torch imported once, one fresh child per example, every child watched.

The parent runs no example code and starts no thread, so a fork of it is as clean as the
parent itself. It reads requests (one JSON line each, with an id) on stdin, runs up to
``size`` children at once, and answers on its protocol pipe with ``{"id", "pid"}`` when
a child starts and ``{"id", "result"}`` (or ``{"id", "harness"}``, a failure of this
harness) when it ends. It enforces each example's timeout, kills each child's whole
process group when the example ends, and ends itself, killing what is left, when its
own parent (the build) is gone.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from ..model import ExampleRequest, ExampleResult, Failure, Segment, result_from_dict
from .capture import Capture, visible_tree
from .child import READY

#: How a child is made: forked from this warm process, or started fresh (``spawn``).
FORK, SPAWN = "fork", "spawn"
#: How long a freshly started child may take to import torch.
STARTUP_TIMEOUT = 180.0
#: How often the parent checks that the build that started it is still there.
PARENT_CHECK = 0.25
#: Characters of a child's stderr kept for its crash report.
ERR_KEEP = 8000
#: Linux ``prctl`` option: orphaned descendants are re-parented to this process.
_PR_SET_CHILD_SUBREAPER = 36


class Stop(Exception):
    """SIGTERM: the build is aborting."""


@dataclass
class Child:
    """One example's process, its pipes and what came through them so far."""

    id: int
    request: ExampleRequest
    pid: int
    fds: dict[int, str]  # read end -> "result" | "stream" | "err" | "exit" (a pidfd)
    started: float
    printed: Capture
    result: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    ready_at: float | None = None
    status: int | None = None  # the wait status, once reaped
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace")
    )

    @property
    def deadline(self) -> float:
        if self.ready_at is None:
            return self.started + STARTUP_TIMEOUT
        return self.ready_at + self.request.timeout

    @property
    def answered(self) -> bool:
        """The child wrote its whole result line (after the ready line)."""
        return self.ready_at is not None and self.result.endswith(b"\n")


class WarmParent:
    """The loop: requests in, children out, results back."""

    def __init__(self, size: int, start: str, protocol: IO[str], numpy_print: dict[str, Any]) -> None:
        self.size = max(1, size)
        self.start = start
        self.protocol = protocol
        self.numpy_print = numpy_print
        self.selector = selectors.DefaultSelector()
        self.queue: deque[tuple[int, ExampleRequest]] = deque()
        self.children: dict[int, Child] = {}  # by pid
        self.dying: set[int] = set()  # killed after they answered, not reaped yet
        self.by_fd: dict[int, Child] = {}
        self.control = b""
        self.build = os.getppid()
        self.open = True
        self.subreaper = _become_subreaper()

    # -- the loop -----------------------------------------------------------------

    def serve(self) -> None:
        self.selector.register(0, selectors.EVENT_READ)
        try:
            while self.open:  # once the build is gone, nobody waits for what still runs
                self._wait()
                self._expire()
                self._reap()
                if os.getppid() != self.build:
                    self.open = False
        except Stop:
            pass
        finally:
            self.shutdown()

    def _wait(self) -> None:
        now = time.monotonic()
        timeout = PARENT_CHECK
        for child in self.children.values():
            timeout = min(timeout, max(0.0, child.deadline - now))
        for key, _ in self.selector.select(timeout):
            fd = int(key.fd)
            if fd == 0:
                self._read_control()
            else:
                self._read_child(fd)

    def _read_control(self) -> None:
        try:
            chunk = os.read(0, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.open = False  # the build closed the pipe, or is gone
            self.selector.unregister(0)
            return
        self.control += chunk
        *lines, self.control = self.control.split(b"\n")
        for line in lines:
            if line.strip():
                message = json.loads(line)
                self.queue.append((message["id"], ExampleRequest.from_dict(message["request"])))
        self._start_queued()

    def _start_queued(self) -> None:
        while self.queue and len(self.children) < self.size:
            ident, request = self.queue.popleft()
            try:
                child = self._start(ident, request)
            except OSError as error:  # fork or pipe refused: no child, no blame
                self._send({"id": ident, "harness": f"could not start a process for the example: {error}"})
                continue
            self.children[child.pid] = child
            for fd in child.fds:
                self.by_fd[fd] = child
                self.selector.register(fd, selectors.EVENT_READ)
            self._send({"id": ident, "pid": child.pid})

    # -- a child's life -------------------------------------------------------------

    def _start(self, ident: int, request: ExampleRequest) -> Child:
        pipes = [os.pipe() for _ in range(3)]  # result, stream, err
        (result_r, result_w), (stream_r, stream_w), (err_r, err_w) = pipes
        if self.start == FORK:
            pid = self._fork(request, result_w, stream_w, err_w, [result_r, stream_r, err_r])
        else:
            pid = self._spawn(request, result_w, stream_w, err_w)
        for fd in (result_w, stream_w, err_w):
            os.close(fd)
        fds = {result_r: "result", stream_r: "stream", err_r: "err"}
        for fd in fds:
            os.set_blocking(fd, False)
        with contextlib.suppress(AttributeError, OSError):  # Linux 5.3+: a pollable exit
            fds[os.pidfd_open(pid)] = "exit"
        printed = Capture(request.max_output)
        return Child(ident, request, pid, fds, time.monotonic(), printed)

    def _fork(self, request: ExampleRequest, result_w: int, stream_w: int, err_w: int, own: list[int]) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        status = 70
        try:
            from .child import detach, run_and_report

            private = [0, self.protocol.fileno(), self.selector.fileno(), *own, *self.by_fd]
            detach(err_w, [fd for fd in private if fd != 0])
            run_and_report(request, self.numpy_print, result_w, stream_w)
            status = 0
        finally:
            os._exit(status)

    def _spawn(self, request: ExampleRequest, result_w: int, stream_w: int, err_w: int) -> int:
        process = subprocess.Popen(
            [sys.executable, "-m", "sphinx_evaldemo.examples.worker", "--child", str(result_w), str(stream_w)],
            stdin=subprocess.PIPE, stdout=err_w, stderr=err_w, pass_fds=(result_w, stream_w),
            start_new_session=True,
        )
        assert process.stdin is not None
        process.stdin.write(json.dumps(request.to_dict()).encode())
        process.stdin.close()
        # reaped by _reap (waitpid); stop the Popen object from reaping it first
        process.returncode = 0
        return process.pid

    def _read_child(self, fd: int) -> None:
        child = self.by_fd.get(fd)
        if child is None:
            return
        what = child.fds[fd]
        if what == "exit":
            self._forget_fd(child, fd)
            self._reap()
            return
        self._drain(child, fd)
        if child.answered:
            self._finish(child)

    def _drain(self, child: Child, fd: int) -> None:
        """Read what ``fd`` holds now; a closed pipe is forgotten."""
        what = child.fds[fd]
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._forget_fd(child, fd)
                return
            if what == "result":
                child.result += chunk
                if child.ready_at is None and child.result.startswith(READY):
                    del child.result[: len(READY)]
                    child.ready_at = time.monotonic()
            elif what == "stream":
                child.printed.write(child.decoder.decode(chunk))
            else:
                child.err += chunk
                del child.err[:-ERR_KEEP]

    def _forget_fd(self, child: Child, fd: int) -> None:
        child.fds.pop(fd, None)
        self.by_fd.pop(fd, None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(fd)
        os.close(fd)

    def _expire(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            if now >= child.deadline:
                self._finish(child, timed_out=True)

    def _reap(self) -> None:
        """Collect every ended child (and, as a subreaper, every orphaned descendant)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.dying.discard(pid)
            child = self.children.get(pid)
            if child is not None:
                child.status = status
                self._finish(child)

    def _finish(self, child: Child, *, timed_out: bool = False) -> None:
        """The example ended (or must end): kill its group, read what is left, answer.

        The answer goes out before the child is reaped: tearing down a process that
        holds torch takes milliseconds that nobody needs to wait for.
        """
        with contextlib.suppress(OSError):
            os.killpg(child.pid, signal.SIGKILL)
        if child.status is None and not child.answered:
            with contextlib.suppress(ChildProcessError):  # its exit status is part of the answer
                child.status = os.waitpid(child.pid, 0)[1]
        if child.status is None:
            self.dying.add(child.pid)
        for fd in list(child.fds):
            if child.fds[fd] != "exit":
                self._drain(child, fd)
            if fd in child.fds:
                self._forget_fd(child, fd)
        del self.children[child.pid]
        self._send({"id": child.id, **self._answer(child, timed_out)})
        if not self.children:
            self._kill_orphans(wait=False)
        self._start_queued()

    def _answer(self, child: Child, timed_out: bool) -> dict[str, Any]:
        request = child.request
        if child.answered and not timed_out:
            try:
                data = json.loads(child.result)
                if isinstance(data, dict) and set(data) == {"harness"}:
                    return {"harness": str(data["harness"])}
                result_from_dict(data)  # checks the shape before it leaves
            except (ValueError, TypeError, KeyError) as error:
                text = bytes(child.result[:200]).decode("utf-8", "replace")
                return {"harness": f"the example's process answered with something that is not a result ({error}): {text!r}"}
            return {"result": data}
        if timed_out:
            failure = Failure("timeout", f"timed out after {request.timeout:g} s")
            seconds = request.timeout
        else:
            failure = _crash(child.status, bytes(child.err).decode("utf-8", "replace"))
            seconds = round(time.monotonic() - (child.ready_at or child.started), 4)
        fields: dict[str, Any] = {"failure": failure, "seconds": seconds}
        text = child.printed.text()
        if text and request.compared:
            fields["setup_output"] = text
        elif text:
            fields["segments"] = (Segment("", text),)
        if child.printed.cut:
            fields["truncated"] = ("printed output",)
        return {"result": asdict(ExampleResult(**fields))}

    # -- the end ------------------------------------------------------------------

    def _kill_orphans(self, *, wait: bool) -> None:
        """Kill what examples left behind and this process adopted (Linux subreaper).

        With ``wait``, until none is left (each killed one's own children are adopted
        in turn); without, one round, reaped later.
        """
        if not self.subreaper:
            return
        deadline = time.monotonic() + 5.0
        while True:
            self._reap()
            found = _own_children() - set(self.children) - self.dying
            if wait:
                found |= self.dying
            for pid in found:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if not found or not wait or time.monotonic() > deadline:
                return
            time.sleep(0.005)

    def shutdown(self) -> None:
        """Kill every running example's group and every adopted process."""
        for child in list(self.children.values()):
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGKILL)
        for child in list(self.children.values()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)
        self.children.clear()
        self._kill_orphans(wait=True)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.protocol.write(json.dumps(visible_tree(message), sort_keys=True) + "\n")
            self.protocol.flush()
        except (OSError, ValueError):
            self.open = False  # the build is gone


def _crash(status: int | None, err: str) -> Failure:
    """A child that ended without a result: how it ended, located where it can be."""
    if status is not None and os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        how = f"the example's process was killed by {name}"
    else:
        code = os.WEXITSTATUS(status) if status is not None else None
        how = f"the example's process exited with status {code} (os._exit or a crash in native code)"
    where = re.findall(r'File "<example>", line (\d+)', err)
    return Failure(
        "crash", how + " while running this example", traceback=_crash_report(err),
        lineno=int(where[0]) if where else None,
    )


def _crash_report(stderr: str) -> str:
    """What faulthandler wrote about the crashing thread, down to the example's frames.

    Thread ids and other threads change from run to run and are left out, so the page
    is the same for every build.
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


def _become_subreaper() -> bool:
    """Linux: adopt the orphans of the examples' processes, so none escapes the build."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _own_children() -> set[int]:
    """Live child processes of this one (Linux ``/proc``)."""
    me = os.getpid()
    found = set()
    try:
        with open(f"/proc/{me}/task/{me}/children", encoding="ascii") as listing:
            return {int(pid) for pid in listing.read().split()}
    except OSError:
        pass
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == me:
                        found.add(int(entry))
    return found


def stop_on_sigterm() -> None:
    def stop(signum: int, frame: object) -> None:
        raise Stop

    signal.signal(signal.SIGTERM, stop)

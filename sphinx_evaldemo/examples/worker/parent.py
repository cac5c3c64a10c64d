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

import contextlib
import json
import os
import select
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from typing import IO, Any

from ..model import ExampleRequest, decode, encode
from ..prctl import become_subreaper
from .capture import Capture, OutputReader, visible_tree
from .child import READY
from .processes import STARTUP_TIMEOUT, Child, Stop, answer, own_children

#: How a child is made: forked from this warm process, or started fresh (``spawn``).
FORK, SPAWN = "fork", "spawn"
#: How often the parent checks that the build that started it is still there.
PARENT_CHECK = 0.25
#: Characters of a child's stderr kept for its crash report.
ERR_KEEP = 8000
#: Seconds a forked child may take to read its request.
REQUEST_WRITE = 5.0


class WarmParent:
    """The loop: requests in, children out, results back."""

    def __init__(self, size: int, start: str, protocol: IO[str], numpy_print: dict[str, Any]) -> None:
        self.size = max(1, size)
        self.start = start
        self.protocol = protocol
        self.numpy_print = numpy_print
        self.selector = selectors.DefaultSelector()
        self.queue: deque[tuple[int, ExampleRequest]] = deque()
        self.children: dict[int, Child] = {}  # running examples, by pid
        self.spares: dict[int, Child] = {}  # made ahead, waiting for a request
        self.spare_deaths = 0
        self.dying: set[int] = set()  # killed after they answered, not reaped yet
        self.by_fd: dict[int, Child] = {}
        #: every descriptor of this process's own (a child closes them all)
        self.private: set[int] = {protocol.fileno(), self.selector.fileno()}
        self.control = b""
        self.build = os.getppid()
        #: the token of the marks in the children's output (see capture.OutputReader)
        self.token = os.urandom(8).hex()
        self.open = True
        self.subreaper = become_subreaper()

    @property
    def wanted_spares(self) -> int:
        """A fork is quick: one spare will do; a fresh start is not: one per slot."""
        if self.spare_deaths >= 3:
            return 0  # spares die on their own: make each child when it is needed
        return 1 if self.start == FORK else self.size

    # -- the loop -----------------------------------------------------------------

    def serve(self) -> None:
        self.selector.register(0, selectors.EVENT_READ)
        signal.signal(signal.SIGCONT, self._continued)
        try:
            self._make_spares()
            while self.open:  # once the build is gone, nobody waits for what still runs
                self._wait()
                self._expire()
                self._reap()
                if os.getppid() != self.build:
                    self.open = False
                else:
                    self._make_spares()
        except Stop:
            pass
        finally:
            self.shutdown()

    def _continued(self, signum: int, frame: object) -> None:
        """SIGCONT: the kernel wakes this process when the build dies (see
        ``prctl.wake_when_parent_dies``). The running examples are killed at once, so one
        that stopped this process has little time to stop it again, and the loop ends.
        (One that stops it again and again, within a millisecond, can still win.)"""
        if os.getppid() == self.build:
            return  # continued for another reason: the build is there
        for pid in list(self.children):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        raise Stop

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
                self.queue.append((message["id"], decode(ExampleRequest, message["request"])))
        self._start_queued()

    def _start_queued(self) -> None:
        while self.queue and len(self.children) < self.size:
            ident, request = self.queue.popleft()
            child = None
            while child is None:
                try:
                    child = self._take_spare()
                except OSError as error:  # fork or pipe refused: no child, no blame
                    self._send({"id": ident, "harness": f"could not start a process for the example: {error}"})
                    break
                if not self._assign(child, ident, request):
                    child = None  # it died waiting: take another
            if child is not None:
                self._send({"id": ident, "pid": child.pid})
        self._make_spares()  # while the children run: the next example need not wait for a fork

    def _take_spare(self) -> Child:
        if self.spares:
            return self.spares.pop(next(iter(self.spares)))
        return self._make()

    def _make_spares(self) -> None:
        while self.open and len(self.spares) < self.wanted_spares:
            try:
                child = self._make()
            except OSError:
                return  # no room for a spare now: children are made when needed
            self.spares[child.pid] = child

    def _assign(self, child: Child, ident: int, request: ExampleRequest) -> bool:
        """Send the request down the child's request pipe; ``False`` if it is gone.

        The write has a bound: a spare that stopped (SIGSTOP) and never reads its pipe
        is given up on instead of holding up every other example.
        """
        fd = child.request_fd
        assert fd is not None
        child.request_fd = None
        child.id, child.request, child.started = ident, request, time.monotonic()
        child.printed = Capture(request.max_output)
        child.reader = OutputReader(child.printed, self.token)
        # a fresh (spawned) spare reads it once it has imported torch
        deadline = time.monotonic() + (REQUEST_WRITE if self.start == FORK else STARTUP_TIMEOUT)
        try:
            os.set_blocking(fd, False)  # a blocking write of more than a pipe holds would wait
            view = memoryview(json.dumps({"request": encode(request), "token": self.token}).encode())
            while view:
                if not select.select([], [fd], [], max(0.0, deadline - time.monotonic()))[1]:
                    raise OSError("the child does not read its request")
                with contextlib.suppress(BlockingIOError):
                    view = view[os.write(fd, view) :]
        except OSError:
            self._discard(child)
            return False
        finally:
            self._close(fd)
        self.children[child.pid] = child
        return True

    # -- a child's life -------------------------------------------------------------

    def _make(self) -> Child:
        pipes = [os.pipe() for _ in range(4)]  # request, result, stream, err
        (request_r, request_w), (result_r, result_w), (stream_r, stream_w), (err_r, err_w) = pipes
        ends = [request_w, result_r, stream_r, err_r]
        if self.start == FORK:
            pid = self._fork(request_r, result_w, stream_w, err_w, ends)
        else:
            pid = self._spawn(request_r, result_w, stream_w, err_w)
        for fd in (request_r, result_w, stream_w, err_w):
            os.close(fd)
        fds = {result_r: "result", stream_r: "stream", err_r: "err"}
        for fd in fds:
            os.set_blocking(fd, False)
        with contextlib.suppress(AttributeError, OSError):  # Linux 5.3+: a pollable exit
            fds[os.pidfd_open(pid)] = "exit"
        child = Child(pid, fds, request_w)
        self.private.update(fds, [request_w])
        for fd in fds:
            self.by_fd[fd] = child
            self.selector.register(fd, selectors.EVENT_READ)
        return child

    def _fork(self, request_r: int, result_w: int, stream_w: int, err_w: int, ends: list[int]) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        status = 70
        try:
            from .child import detach, serve_one

            detach(err_w, [*self.private, *ends])
            serve_one(request_r, self.numpy_print, result_w, stream_w)
            status = 0
        finally:
            os._exit(status)

    def _spawn(self, request_r: int, result_w: int, stream_w: int, err_w: int) -> int:
        process = subprocess.Popen(
            [sys.executable, "-m", "sphinx_evaldemo.examples.worker", "--child", str(result_w), str(stream_w)],
            stdin=request_r, stdout=err_w, stderr=err_w, pass_fds=(result_w, stream_w),
            start_new_session=True,
        )
        # reaped by _reap (waitpid); stop the Popen object from reaping it first
        process.returncode = 0
        return process.pid

    def _read_child(self, fd: int) -> None:
        child = self.by_fd.get(fd)
        if child is None:
            return
        if child.fds[fd] == "exit":
            self._forget_fd(child, fd)
            self._reap()
            return
        self._drain(child, fd)
        if child.answered and child.pid in self.children:
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
                child.reader.feed(chunk)
            else:
                child.err += chunk
                del child.err[:-ERR_KEEP]

    def _forget_fd(self, child: Child, fd: int) -> None:
        child.fds.pop(fd, None)
        self.by_fd.pop(fd, None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(fd)
        self._close(fd)

    def _close(self, fd: int) -> None:
        self.private.discard(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    def _discard(self, child: Child) -> None:
        """A child that is no longer wanted (a spare that died, or the end)."""
        with contextlib.suppress(OSError):
            os.killpg(child.pid, signal.SIGKILL)
        self.dying.add(child.pid)
        for fd in list(child.fds):
            self._forget_fd(child, fd)
        if child.request_fd is not None:
            self._close(child.request_fd)
            child.request_fd = None

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
            spare = self.spares.pop(pid, None)
            if spare is not None:
                self.spare_deaths += 1
                self._discard(spare)
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
        self._send({"id": child.id, **answer(child, timed_out)})
        if not self.children:
            self._kill_orphans(wait=False)
        self._start_queued()

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
            found = own_children() - set(self.children) - set(self.spares) - self.dying
            if wait:
                found |= self.dying
            for pid in found:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if not found or not wait or time.monotonic() > deadline:
                return
            time.sleep(0.005)

    def shutdown(self) -> None:
        """Kill every running example's group, the spares, and every adopted process.

        A SIGTERM from the build while this runs must not cut it short (it would
        skip the clean-up and the quick exit): from here on it is ignored.
        """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGCONT, signal.SIG_DFL)
        for child in [*self.children.values(), *self.spares.values()]:
            self._discard(child)
        self.children.clear()
        self.spares.clear()
        self._kill_orphans(wait=True)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.protocol.write(json.dumps(visible_tree(message), sort_keys=True) + "\n")
            self.protocol.flush()
        except (OSError, ValueError):
            self.open = False  # the build is gone

"""A child process as the warm parent sees it: its pipes, how it ended, adopted orphans."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import ExampleRequest, ExampleResult, Failure, encode
from .capture import Capture, OutputReader

#: How long a freshly started child may take to import torch.
STARTUP_TIMEOUT = 180.0

@dataclass
class Child:
    """One example's process, its pipes and what came through them so far.

    A child is made before its request arrives (a spare), so that the fork and the
    child's own set-up cost the example nothing; it then waits on its request pipe.
    """

    pid: int
    fds: dict[int, str]  # read end -> "result" | "stream" | "err" | "exit" (a pidfd)
    request_fd: int | None  # the write end of its request pipe, until the request is sent
    id: int = -1
    request: ExampleRequest | None = None
    started: float = 0.0
    printed: Capture = field(default_factory=lambda: Capture(2))
    #: what reads the output pipe into ``printed`` (marks, UTF-8), made with the request
    reader: OutputReader = field(default_factory=lambda: OutputReader(Capture(2), ""))
    result: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    ready_at: float | None = None
    status: int | None = None  # the wait status, once reaped

    @property
    def deadline(self) -> float:
        if self.request is None:
            return float("inf")
        if self.ready_at is None:
            return self.started + STARTUP_TIMEOUT
        return self.ready_at + self.request.timeout

    @property
    def answered(self) -> bool:
        """The child wrote its whole result line (after the ready line)."""
        return self.ready_at is not None and self.result.endswith(b"\n")


def answer(child: Child, timed_out: bool) -> dict[str, Any]:
    """What the parent reports for a child that ended: its result, or how it ended."""
    request = child.request
    assert request is not None
    child.reader.close()
    if child.answered and not timed_out:
        try:  # the result is checked once, where it enters the build (the executor)
            data = json.loads(child.result)
        except ValueError as error:
            text = bytes(child.result[:200]).decode("utf-8", "replace")
            return {"harness": f"the example's process answered with something that is not a result (not JSON: {error}): {text!r}"}
        if isinstance(data, dict) and set(data) == {"harness"}:
            return {"harness": str(data["harness"])}
        return {"result": with_printed(child, request, data)}
    if timed_out:
        failure = Failure("timeout", f"timed out after {request.timeout:g} s")
        seconds = request.timeout
    else:
        failure = crash(child.status, bytes(child.err).decode("utf-8", "replace"))
        seconds = round(time.monotonic() - (child.ready_at or child.started), 4)
    fields: dict[str, Any] = {"failure": failure, "seconds": seconds}
    text = child.printed.text()
    if text and request.compared:
        fields["setup_output"] = text
    elif text:
        fields["segments"] = child.printed.segments()
    if child.printed.cut:
        fields["truncated"] = ("printed output",)
    return {"result": encode(ExampleResult(**fields))}


def with_printed(child: Child, request: ExampleRequest, data: dict[str, Any]) -> dict[str, Any]:
    """An as-written example's result with what its process printed, as read here: its
    fd 1 and 2 lead to this process, which labels the segments by the marks in them."""
    if request.compared:
        return data
    data = dict(data)
    data["segments"] = encode(child.printed.segments())
    if child.printed.cut:
        data["truncated"] = ["printed output", *data.get("truncated", [])]
    return data


def crash(status: int | None, err: str) -> Failure:
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
        "crash", how + " while running this example", traceback=crash_report(err),
        lineno=int(where[0]) if where else None,
    )


def crash_report(stderr: str) -> str:
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


def own_children() -> set[int]:
    """Child processes of this one, zombies included (Linux ``/proc``)."""
    me = os.getpid()
    with contextlib.suppress(OSError):
        return {int(pid) for pid in Path(f"/proc/{me}/task/{me}/children").read_text().split()}
    found = set()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == me:
                found.add(int(entry.name))
    return found


class Stop(Exception):
    """SIGTERM: the build is aborting."""


def stop_on_sigterm() -> None:
    """Make SIGTERM (the build stopping) end :meth:`WarmParent.serve`, which cleans up."""

    def stop(signum: int, frame: object) -> None:
        raise Stop

    signal.signal(signal.SIGTERM, stop)

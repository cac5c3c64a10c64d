"""Processes as the executor sees them: whether one is stopped or has ended (Linux's
``/proc`` and pidfd, with a portable fallback), its group killed, its end told in words."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
from pathlib import Path


def kill_group(pid: int | None) -> None:
    if pid is not None:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)


def stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP, SIGTSTP, a debugger): Linux ``/proc``."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in (b"T", b"t")


def exited_within(process: subprocess.Popen[bytes], seconds: float) -> bool:
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


def ended_how(code: int, ready: bool, stderr: str) -> str:
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

"""Linux process controls (``prctl(2)`` through libc); elsewhere each call is a no-op.

Imported by the worker and by the helper processes, so it imports nothing but the
standard library.
"""

from __future__ import annotations

import ctypes
import signal
import sys

#: ``prctl`` options used here.
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def prctl(option: int, value: int) -> bool:
    """Set one process attribute; whether it took effect (always False off Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def die_with_parent() -> None:
    """Have the kernel kill this process if its parent dies (Linux; elsewhere a no-op)."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def wake_when_parent_dies() -> None:
    """Have the kernel send SIGCONT to this process when its parent dies (Linux).

    For the warm parent: SIGKILL would also end a stopped one, but would leave what its
    examples started (their subprocesses, adopted orphans) running; continued, it finds
    its parent gone within a quarter of a second and kills all of that before it exits.
    A running process ignores SIGCONT. The kernel ties the request to the thread that
    started this process, so the build starts it from a thread that lasts.
    """
    prctl(PR_SET_PDEATHSIG, signal.SIGCONT)


def become_subreaper() -> bool:
    """Adopt the orphans of this process's descendants (Linux), so none escapes."""
    return prctl(PR_SET_CHILD_SUBREAPER, 1)

"""The worker's memory: peak resident size per mode, and a cap on what an example may add."""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak() -> None:
    """Start a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM)."""
    with contextlib.suppress(OSError):
        _CLEAR_REFS.write_text("5")


def peak_bytes() -> int:
    """Peak resident memory since :func:`reset_peak`, or 0 where it cannot be read."""
    kib = _status_kib("VmHWM")
    return kib * 1024 if kib is not None else 0


@contextlib.contextmanager
def limited(megabytes: int | None) -> Iterator[None]:
    """Let the process grow by at most ``megabytes`` of address space while inside.

    Allocations past the cap fail (MemoryError, or torch's "not enough memory")
    instead of taking the machine down; the cap is lifted afterwards.
    """
    current = _status_kib("VmSize")
    if not megabytes or current is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = current * 1024 + megabytes * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

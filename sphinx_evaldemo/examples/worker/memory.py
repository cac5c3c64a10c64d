"""The worker's memory: peak resident size per mode, and a cap on what an example may add."""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator

# Read and written with os calls, not pathlib: in a freshly forked child every library
# function touched for the first time costs page copies, and these run in every child.
_STATUS = "/proc/self/status"
_STATM = "/proc/self/statm"
_CLEAR_REFS = "/proc/self/clear_refs"


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def _status_kib(field: str) -> int | None:
    try:
        for line in _read(_STATUS).splitlines():
            if line.startswith(field.encode() + b":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _size_kib() -> int | None:
    """The process's virtual size (``VmSize``), from ``statm``'s first field, in pages."""
    try:
        return int(_read(_STATM).split()[0]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return None


def reset_peak() -> None:
    """Start a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM)."""
    with contextlib.suppress(OSError):
        fd = os.open(_CLEAR_REFS, os.O_WRONLY)
        try:
            os.write(fd, b"5")
        finally:
            os.close(fd)


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
    if not megabytes or (current := _size_kib()) is None:
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

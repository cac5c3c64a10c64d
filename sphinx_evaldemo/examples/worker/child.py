"""The child side: one process that runs one example, streams its output, reports, exits.

A child is forked from the warm parent (or started fresh where fork is unsafe). Before
the example runs it leaves the parent's session and process group, gets ``/dev/null``
as stdin, sends fd 1 and 2 to its parent's error pipe (crash reports), and closes every
file descriptor of the parent's that it could otherwise write into. An as-written
example's fd 1 and 2 then lead to the parent's output pipe (see :mod:`.script`), so
what it prints reaches the parent as it is printed, whoever prints it; the result is
one JSON line, written with functions taken before the example could replace them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Iterable
from typing import Any

from ..model import ExampleRequest, decode, encode
from ..prctl import die_with_parent
from .capture import stream_to
from .run import run_example

#: Taken at import, in the warm parent: an example that patches ``json.dumps``,
#: the codec's ``encode`` or ``os.write`` changes its own process's copies, not these.
_dumps = json.dumps
_encode = encode
_write = os.write
_format_exc = traceback.format_exc

#: The first line a child writes on its result pipe, once it can run the example.
READY = b"ready\n"

def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` (a pipe may take it in parts); a closed pipe loses it."""
    view = memoryview(data)
    with contextlib.suppress(OSError):  # the parent is gone, or the example closed the pipe
        while view:
            view = view[_write(fd, view) :]


def detach(err_fd: int, close: Iterable[int]) -> None:
    """Leave the parent's session, take an empty stdin, send fd 1 and 2 to ``err_fd``.

    ``close`` lists the parent's own descriptors (its protocol pipes, other children's
    pipes): after this the example can reach none of them.
    """
    os.setsid()
    die_with_parent()
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE, signal.SIGCONT):
        signal.signal(number, signal.SIG_DFL)
    for fd in close:
        with contextlib.suppress(OSError):  # already closed
            os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(err_fd, 1)
    os.dup2(err_fd, 2)
    if err_fd > 2:
        os.close(err_fd)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115  # lives as long as the child


def run_and_report(
    request: ExampleRequest, token: str, numpy_print: dict[str, Any], result_fd: int, stream_fd: int
) -> None:
    """Run the example, streaming what it prints to ``stream_fd``; write the result line.

    An as-written example's fd 1 and 2 go to ``stream_fd`` itself (the parent labels the
    segments by the marks carrying ``token``); a compared one's captured text is sent.
    """
    write_all(result_fd, READY)
    if request.compared:
        stream_to(lambda text: write_all(stream_fd, text.encode("utf-8", "backslashreplace")))
    try:
        result = run_example(request, numpy_print, fresh=True, output_fd=stream_fd, token=token)
        stream_to(None)
        line = _dumps(_encode(result), sort_keys=True)
    except BaseException:  # noqa: BLE001  # the harness's own failure, reported as that
        stream_to(None)
        line = _dumps({"harness": "the example's process could not report its result:\n" + _format_exc()})
    write_all(result_fd, line.encode("utf-8", "replace") + b"\n")


def read_request(fd: int) -> tuple[ExampleRequest, str] | None:
    """The request the parent writes down the pipe, and the token of its output marks
    (``None``: it closed the pipe without one)."""
    data = bytearray()
    while chunk := os.read(fd, 1 << 16):
        data += chunk
    os.close(fd)
    if not data:
        return None
    message = json.loads(data)
    return decode(ExampleRequest, message["request"]), str(message["token"])


def serve_one(request_fd: int, numpy_print: dict[str, Any], result_fd: int, stream_fd: int) -> None:
    """Wait for the one request (a forked spare), run it, report."""
    received = read_request(request_fd)
    if received is not None:
        run_and_report(*received, numpy_print, result_fd, stream_fd)


def spawned(argv: list[str]) -> None:
    """``--child RESULT_FD STREAM_FD``: a freshly started child (where fork is unsafe).

    The request arrives on stdin, which is then ``/dev/null``; the parent has already
    put this process in a session of its own, and its fd 1 and 2 lead to the parent.
    """
    import numpy as np

    result_fd, stream_fd = int(argv[0]), int(argv[1])
    die_with_parent()
    request_fd = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    received = read_request(request_fd)
    if received is not None:
        run_and_report(*received, dict(np.get_printoptions()), result_fd, stream_fd)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

"""An as-written example run as ``python example.py`` runs it, in the process that runs it.

The script gets a fresh module named ``__main__`` (so the classes it defines pickle), a
``sys.argv`` of one item, and for ``sys.stdout`` and ``sys.stderr`` real text files on
file descriptors 1 and 2, which lead to one pipe (or, run in this process, one file):
what a subprocess, a forked child, C code or faulthandler writes is in the output, in
the order it was written. When the mode of the script's models changes (the modules it
constructs, in a function or not, and those bound at its top level), a mark goes into
that same stream (see :class:`.capture.OutputReader`), so the segments are labelled
whoever wrote the text. At the end, as the interpreter does at exit, its non-daemon
threads are joined and its ``atexit`` handlers run, before the output is taken.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import ctypes
import faulthandler
import functools
import io
import os
import sys
import tempfile
import threading
import types
import weakref
from collections.abc import Callable
from typing import IO, Any, TextIO

from torch import nn
from torch.nn.modules import module as torch_module
from torch.nn.modules.loss import _Loss

from ..model import Segment
from .capture import Capture, OutputReader, mark

#: ``sys.argv[0]`` of a script: the name ``python example.py`` would give it.
PROGRAM = "example.py"


def main_module() -> types.ModuleType:
    """A module named ``__main__``, as the interpreter makes one for a script."""
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    return module


class Models:
    """The script's models: every module it constructs that is no part of another, and
    the modules bound at its top level (made without a constructor call: loaded, copied).

    While started, ``nn.Module.__init__`` notes each module made, torch's registration
    hook drops those that become a part of another, and ``nn.Module.train`` tells
    ``on_mode`` (so text written by C code after ``net.eval()`` is labelled ``eval``).
    """

    def __init__(self, namespace: dict[str, Any], on_mode: Callable[[], None]) -> None:
        self._namespace = namespace
        self._on_mode = on_mode
        self._roots: dict[int, weakref.ref[nn.Module]] = {}
        self._undo: list[Callable[[], object]] = []

    def start(self) -> None:
        roots, on_mode = self._roots, self._on_mode
        init, train = nn.Module.__init__, nn.Module.train

        def forget(key: int) -> Callable[[object], None]:
            def forgotten(_: object) -> None:
                roots.pop(key, None)

            return forgotten

        @functools.wraps(init)
        def noting_init(module: nn.Module, *args: Any, **kwargs: Any) -> None:
            init(module, *args, **kwargs)
            with contextlib.suppress(TypeError):  # a module that cannot be weakly referenced
                roots[id(module)] = weakref.ref(module, forget(id(module)))

        @functools.wraps(train)
        def train_(module: nn.Module, mode: bool = True) -> nn.Module:
            result = train(module, mode)
            on_mode()
            return result

        def registered(parent: nn.Module, name: str, child: nn.Module | None) -> None:
            if child is not None:
                roots.pop(id(child), None)

        handle = torch_module.register_module_module_registration_hook(registered)
        setattr(nn.Module, "__init__", noting_init)  # noqa: B010  # undone by stop()
        setattr(nn.Module, "train", train_)  # noqa: B010
        self._undo = [handle.remove, functools.partial(setattr, nn.Module, "__init__", init),
                      functools.partial(setattr, nn.Module, "train", train)]

    def stop(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo = []

    def label(self) -> str:
        """``train``, ``eval``, ``mixed`` (models in both), or ``""`` (no model yet).

        torch's loss modules do not count: a script never puts its criterion in eval
        mode, and its segments after ``model.eval()`` are eval all the same.
        """
        modes = set()
        found = [ref() for ref in list(self._roots.values())]
        found += [value for value in list(self._namespace.values()) if isinstance(value, nn.Module)]
        for module in found:
            if module is not None and not isinstance(module, _Loss):
                modes.add(getattr(module, "training", None))
        modes.discard(None)  # a module that never called nn.Module.__init__
        if not modes:
            return ""
        return "mixed" if len(modes) > 1 else ("train" if modes.pop() else "eval")


class ScriptStream(io.TextIOWrapper):
    """``sys.stdout`` or ``sys.stderr``: a text file on fd 1 or 2 that, before each
    write, lets the run mark a change of the models' mode."""

    relabel: Callable[[], None] = staticmethod(lambda: None)

    def write(self, text: str) -> int:
        self.relabel()
        return super().write(text)


def _stream(fd: int, like: TextIO | Any, errors: str, name: str) -> ScriptStream:
    """A stream as the interpreter makes it for a script in a terminal: line-buffered."""
    raw = io.FileIO(fd, "w", closefd=False)
    raw.name = name  # the interpreter names its own the same way
    encoding = getattr(like, "encoding", None) or "utf-8"
    errors = getattr(like, "errors", None) or errors
    return ScriptStream(io.BufferedWriter(raw), encoding=encoding, errors=errors, newline="\n",
                        line_buffering=True)


def _flush_c_streams() -> None:
    """C's own buffered output (``printf`` from an extension), as ``exit()`` would flush it."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).fflush(None)


class Script:
    """The process state of one script run; a context manager around the run.

    ``output_fd``: the pipe that fd 1 and 2 are sent to, read by the warm parent (the
    segments are then its to take). Without it (a run inside a process that goes on,
    such as a test's), they are sent to a temporary file read back at the end, and
    everything is put back: the streams, the descriptors, ``__main__``, ``sys.argv``.
    ``fresh``: this process runs nothing else and exits after the run.
    """

    def __init__(self, limit: int, *, fresh: bool, output_fd: int | None = None, token: str = "") -> None:
        self.module = main_module()
        self.namespace: dict[str, Any] = self.module.__dict__
        self.models = Models(self.namespace, self.relabel)
        self._fresh = fresh
        self._output_fd = output_fd
        self._token = token or os.urandom(8).hex()
        self._label = ""
        self._streams: list[ScriptStream] = []
        self._file: IO[bytes] | None = None
        self._mark_fd = -1
        self._saved: dict[str, Any] = {}
        self._threads: set[threading.Thread] = set()
        self.capture = Capture(limit)

    # -- entering and leaving ---------------------------------------------------------

    def __enter__(self) -> Script:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # already closed, or not a stream
                stream.flush()
        if self._output_fd is None:
            self._file = tempfile.TemporaryFile()  # closed in __exit__
            target = self._file.fileno()
        else:
            target = self._output_fd
        if not self._fresh:
            self._saved = {
                "main": sys.modules.get("__main__"), "argv": sys.argv,
                "streams": (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__),
                "fds": (os.dup(1), os.dup(2)),
            }
        else:
            # the harness's own crash report keeps going where it went (the warm
            # parent's error pipe); faulthandler.enable() in the script moves it to fd 2
            faulthandler.enable(file=os.dup(2))
            atexit._clear()  # what the warm parent's modules registered is not the script's
        os.dup2(target, 1)
        os.dup2(target, 2)
        self._mark_fd = target
        out = _stream(1, sys.__stdout__, "strict", "<stdout>")
        err = _stream(2, sys.__stderr__, "backslashreplace", "<stderr>")
        for stream in (out, err):
            stream.relabel = self.relabel
        self._streams = [out, err]
        sys.stdout = sys.__stdout__ = out  # type: ignore[misc]  # as the interpreter sets both
        sys.stderr = sys.__stderr__ = err  # type: ignore[misc]
        sys.modules["__main__"] = self.module
        sys.argv = [PROGRAM]
        self._threads = set(threading.enumerate())
        self.models.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._flush()
        self.models.stop()
        if not self._fresh:
            self._put_back()
        if self._file is not None:
            reader = OutputReader(self.capture, self._token)
            self._file.seek(0)
            while chunk := self._file.read(1 << 20):
                reader.feed(chunk)
            reader.close()
            self._file.close()

    def _put_back(self) -> None:
        saved = self._saved
        for fd, copy in zip((1, 2), saved["fds"], strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__ = saved["streams"]  # type: ignore[misc]
        sys.argv = saved["argv"]
        if saved["main"] is not None:
            sys.modules["__main__"] = saved["main"]
        for stream in self._streams:
            with contextlib.suppress(Exception):  # the script may have closed it
                stream.detach()

    # -- during the run -------------------------------------------------------------

    def relabel(self) -> None:
        """Mark the output when the models' mode changed since the last mark."""
        try:
            label = self.models.label()
        except Exception:  # noqa: BLE001  # a model's own attribute access failed: keep the label
            return
        if label == self._label:
            return
        self._label = label
        for stream in self._streams:  # what was written before belongs to the old label
            with contextlib.suppress(Exception):
                io.TextIOWrapper.flush(stream)
        data = mark(self._token, label)
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(self._mark_fd, data) :]

    def finish(self) -> None:
        """What the interpreter does when a script ends: join its non-daemon threads, run
        its ``atexit`` handlers (their errors are printed, as Python prints them), flush.

        In a process that goes on, only the threads the script started are joined, and
        ``atexit`` is the process's own: it is left to the process's exit.
        """
        try:
            if self._fresh:
                shutdown = getattr(threading, "_shutdown", None)
                if shutdown is not None:
                    shutdown()
                atexit._run_exitfuncs()
            else:
                current = threading.current_thread()
                while started := [t for t in threading.enumerate()
                                  if t not in self._threads and t is not current and not t.daemon]:
                    for thread in started:
                        thread.join()
        except BaseException:  # noqa: BLE001, S110  # an interrupt while joining: the output is still taken
            pass
        self._flush()

    def _flush(self) -> None:
        for stream in (sys.stdout, sys.stderr, *self._streams):
            with contextlib.suppress(Exception):  # closed or replaced by the script
                stream.flush()
        _flush_c_streams()

    def segments(self) -> tuple[tuple[Segment, ...], int]:
        """What was printed, and how many characters were cut (nothing when the warm
        parent reads the output: it takes the segments itself)."""
        if self._output_fd is not None:
            return (), 0
        return self.capture.segments(), self.capture.cut

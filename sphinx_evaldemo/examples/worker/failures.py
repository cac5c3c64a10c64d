"""An example's code compiled and run under its own file name, and what its exceptions
mean for the reader: a :class:`Failure` with the traceback from the example's frames on."""

from __future__ import annotations

import contextlib
import linecache
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ..model import Failure
from .capture import Capture

#: The file name an example's code is compiled under; tracebacks show it.
FILENAME = "<example>"
#: This package's folder: frames in it are the harness's, not the example's.
_PACKAGE = Path(__file__).resolve().parents[2]


class ExampleFailed(Exception):
    """Carries a :class:`Failure` out of the run, with what was computed so far."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@contextlib.contextmanager
def redirected(stream: TextIO | Capture) -> Iterator[None]:
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        yield


_OUT_OF_MEMORY = re.compile(r"not enough memory|can't allocate memory|out of memory", re.IGNORECASE)


def kind_of(exc: BaseException) -> str:
    """What an exception from the example's own code means for the reader."""
    if isinstance(exc, SystemExit):
        return "exit"
    if isinstance(exc, SyntaxError):
        return "syntax"
    if isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and _OUT_OF_MEMORY.search(str(exc))
    ):
        return "memory"
    return "exception"


def failure_from(
    exc: BaseException, kind: str = "exception", prefix: str = "", limit: int | None = None
) -> Failure:
    """A failure with the traceback from the example's own frames onward."""
    tb_exc = traceback.TracebackException.from_exception(exc)
    frames = list(tb_exc.stack)
    # from the example's own frames on; where it has none (a pass the harness made, the
    # model's forward failing), from the first frame past the harness: the model's call
    first = next((i for i, f in enumerate(frames) if f.filename == FILENAME), None)
    if first is None:
        first = next((i for i, f in enumerate(frames) if not _harness(f.filename)), len(frames))
    tb_exc.stack = traceback.StackSummary.from_list(frames[first:])
    lines = [f.lineno for f in frames if f.filename == FILENAME]
    if isinstance(exc, SyntaxError) and exc.filename == FILENAME:
        lines.append(exc.lineno or 0)
    text = "".join(tb_exc.format())
    summary = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    message = summary.splitlines()[-1] if summary else type(exc).__name__
    if kind == "exit":
        message = f"the example called sys.exit({getattr(exc, 'code', None)!r})"
    elif kind == "memory":
        what = f"its memory limit of {limit} MB" if limit else "the memory it could get"
        message = f"the example ran past {what} ({message})"
    return Failure(
        kind=kind,  # type: ignore[arg-type]  # callers pass a FailureKind
        message=prefix + message,
        traceback=text,
        exc_type=type(exc).__name__,
        exc_mro=tuple(klass.__name__ for klass in type(exc).__mro__),
        lineno=lines[-1] if lines else None,
    )


def _harness(filename: str) -> bool:
    """Whether ``filename`` is this package's own code (which a traceback leaves out)."""
    return Path(filename).resolve().is_relative_to(_PACKAGE)


def run_code(code: str, namespace: dict[str, Any]) -> None:
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
    compiled = compile(code, FILENAME, "exec", dont_inherit=True)
    exec(compiled, namespace)  # noqa: S102  # running the page's example is the point

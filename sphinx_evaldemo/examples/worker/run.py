"""Running one example in this process: setup, the modes' passes, the comparison."""

from __future__ import annotations

import builtins
import contextlib
import copy
import dataclasses
import functools
import linecache
import re
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import torch
from torch import nn

from .. import compare, detect, trace, why
from ..model import (
    Comparison,
    ExampleRequest,
    ExampleResult,
    Failure,
    Mode,
    ModeRun,
)
from . import memory, state
from .capture import Capture, truncate
from .start import isolated, seed_all

#: The file name an example's code is compiled under; tracebacks show it.
FILENAME = "<example>"


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
    first = next((i for i, f in enumerate(frames) if f.filename == FILENAME), len(frames))
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


def run_code(code: str, namespace: dict[str, Any]) -> None:
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
    compiled = compile(code, FILENAME, "exec", dont_inherit=True)
    exec(compiled, namespace)  # noqa: S102  # running the page's example is the point


def find_model(namespace: dict[str, Any], name: str | None) -> tuple[str, nn.Module]:
    modules = {k: v for k, v in namespace.items() if isinstance(v, nn.Module) and not k.startswith("_")}
    if name is not None:
        if name not in namespace:
            known = ", ".join(modules) or "none"
            raise ExampleFailed(Failure("model", f":model: {name!r} is not defined by the code; top-level modules: {known}; set :model: to one of them"))
        value = namespace[name]
        if not isinstance(value, nn.Module):
            raise ExampleFailed(Failure("model", f":model: {name!r} is of type {type(value).__name__}, not a torch.nn.Module; name a module"))
        return name, value
    distinct = {id(v): k for k, v in reversed(modules.items())}
    if not distinct:
        raise ExampleFailed(Failure("model", "the code binds no torch.nn.Module at the top level; assign the model to a name (net = ...) or drop :input: to run the code as written"))
    if len(distinct) > 1:
        raise ExampleFailed(Failure("model", f"several top-level modules ({', '.join(modules)}); choose one with :model: NAME"))
    found = next(iter(distinct.values()))
    return found, modules[found]


def _call(model: nn.Module, value: Any, no_grad: bool) -> Any:
    context = torch.no_grad() if no_grad else contextlib.nullcontext()
    with context:
        return model(*value) if isinstance(value, tuple) else model(value)


def _fresh(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001  # some inputs cannot be copied; use them as they are
        return value


def _no_trace(index: int) -> None:
    """The default for :func:`run_mode`'s ``on_pass``: nothing is traced."""


def run_mode(
    request: ExampleRequest, mode: Mode, model: nn.Module, value: Any,
    on_pass: Callable[[int], None] = _no_trace, buffer_name: Callable[[str], str] = str,
) -> tuple[ModeRun, Any]:
    """The mode's passes, each on a fresh copy of the input, each recorded as it ends.

    The output is printed and copied right after its pass, so an in-place module
    (``Dropout(inplace=True)``) or a later pass cannot change what the page shows.
    The determinism check is one more pass whose printed output is discarded.
    ``on_pass(n)`` is called before pass ``n`` (0, 1, ...; the check is pass 1 when
    ``:repeat:`` is 1) and with -1 after the last: the trace records passes 0 and 1.
    """
    started = time.perf_counter()
    model.train(mode == "train")
    seed_all(request.seed)
    no_grad = request.no_grad and mode == "eval"
    before = {n: b.detach().clone() for n, b in model.named_buffers()}
    printed = Capture(request.max_output)
    texts: list[str] = []
    kept: list[Any] = []
    grad = None
    memory.reset_peak()
    try:
        with redirected(printed):
            for index in range(request.repeat):
                on_pass(index)
                out = _call(model, _fresh(value), no_grad)
                texts.append(repr(out))
                kept.append(compare.snapshot(out))
                grad = compare.requires_grad(out) if grad is None else grad
        changed = tuple(
            buffer_name(n) for n, b in model.named_buffers()
            if n not in before or not torch.equal(before[n], b)
        )
        if len(kept) > 1:
            second = kept[1]
        else:
            on_pass(1)
            with redirected(Capture(1000)):
                second = compare.snapshot(_call(model, _fresh(value), no_grad))
        on_pass(-1)
    except BaseException as exc:  # noqa: BLE001  # the example's failure, reported
        failure = failure_from(exc, kind_of(exc), f"model.{mode}() pass: ", request.memory_limit)
        raise ExampleFailed(failure) from None
    run = ModeRun(
        mode=mode,
        outputs=tuple(truncate(text, request.max_output) for text in texts),
        printed=printed.text(),
        requires_grad=grad,
        deterministic=compare.equal(kept[0], second),
        buffers_changed=changed,
        seconds=round(time.perf_counter() - started, 4),
        peak_memory=memory.peak_bytes(),
        truncated=printed.cut > 0 or any(len(text) > request.max_output for text in texts),
        tensors=compare.views(kept[0]),
    )
    return run, kept[0]


def _materialise(model: nn.Module, value: Any, setup: Capture) -> None:
    """Lazy modules get their shapes before the start state is taken (see :mod:`.state`)."""
    try:
        with redirected(setup):
            state.materialise(model, lambda: _call(model, _fresh(value), no_grad=True))
    except BaseException as exc:  # noqa: BLE001  # the example's failure, reported
        prefix = "could not materialise the lazy modules (one eval pass on the input): "
        raise ExampleFailed(failure_from(exc, kind_of(exc), prefix)) from None


def device_for(request: ExampleRequest) -> torch.device:
    """The ``:device:`` to use here; ``cuda`` on a machine without one is the example's failure."""
    if request.device == "cpu" or (request.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ExampleFailed(Failure("device", "needs a GPU (:device: cuda), and this machine has none (torch.cuda.is_available() is False)"))
    return torch.device("cuda")


def _to(value: Any, device: torch.device) -> Any:
    """The forward input with every tensor in it (in tuples, lists, dicts) on ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple | list):
        items = [_to(item, device) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        return {key: _to(item, device) for key, item in value.items()}
    return value


def run_compared(request: ExampleRequest, namespace: dict[str, Any], setup: Capture) -> dict[str, Any]:
    name, model = find_model(namespace, request.model)
    try:
        with redirected(setup):
            value = eval(request.input or "", namespace)  # noqa: S307  # the page's own expression
            if request.device != "cpu":
                model.to(namespace["device"])
                value = _to(value, namespace["device"])
    except BaseException as exc:  # noqa: BLE001
        raise ExampleFailed(failure_from(exc, "input", prefix=f":input: {request.input!r} failed: ")) from None
    _materialise(model, value, setup)
    notes: list[str] = []
    found = state.guarded("list of mode-dependent modules", notes,
                          lambda: detect.mode_dependent(model, name), ())
    try:
        start = state.take(model)
    except state.StateFailed as failed:
        raise ExampleFailed(failed.failure) from None
    stats = state.guarded("running statistics", notes, lambda: why.before(model), {})
    recorder = trace.Recorder(model)
    traced = len(request.modes) == 2 and state.guarded("trace", notes, recorder.attach, False) is None
    passes: dict[Mode, tuple[list[trace.Call], list[trace.Call]]] = {}

    def on_pass(index: int) -> None:
        """Pass 0 of each mode is its reference; pass 1 (the check) is compared with it."""
        # ``mode`` is the loop's below: run_mode calls this during that mode's passes
        if not traced or index not in (0, 1):
            recorder.stop()
        elif index == 0:
            passes[mode] = (recorder.reference(), [])
        else:
            passes[mode] = (passes[mode][0], recorder.compare(passes[mode][0]))

    def varied_names(compared: list[trace.Call]) -> tuple[str, ...]:
        return tuple(detect.access_path(name, q, model) for q in trace.varied(compared))

    def buffer_name(qualname: str) -> str:
        owner, _, buffer = qualname.rpartition(".")
        return f"{detect.access_path(name, owner, model)}.{buffer}"

    runs: list[ModeRun] = []
    firsts: dict[str, Any] = {}
    # the model's own name titles the panels (``net.train()``)
    partial: dict[str, Any] = {"mode_dependent": found, "runs": runs, "extra": {"model": name}}
    try:
        for mode in request.modes:
            try:
                state.restore(model, start, mode)
                run, first = run_mode(request, mode, model, value, on_pass, buffer_name)
            except state.StateFailed as failed:
                raise PartialFailure(failed.failure, partial) from None
            except ExampleFailed as failed:
                raise PartialFailure(failed.failure, partial) from None
            if traced and not recorder.failed and run.deterministic is False and mode in passes:
                varied = state.guarded("list of modules that varied", notes,
                                       functools.partial(varied_names, passes[mode][1]), ())
                run = dataclasses.replace(run, varied=varied)
            runs.append(run)
            firsts[mode] = first
    finally:
        recorder.detach()
    if recorder.failed:
        notes.append(f"the trace stopped: a hook failed ({recorder.failed})")
    if len(request.modes) == 2:
        a, b = request.modes
        partial["comparison"] = Comparison((a, b), compare.diff_leaves(firsts[a], firsts[b]))
        if traced and not recorder.failed and a in passes and b in passes:
            partial["trace"] = state.guarded("trace", notes, lambda: trace.build(
                (a, b), passes[a][0], passes[b][0], model, name), None)
    if traced and not recorder.failed and "train" in passes and runs:  # the page's first sentence
        changed = next((r.buffers_changed for r in runs if r.mode == "train"), ())
        partial["extra"]["why"] = state.guarded("explanation", notes, lambda: why.explain(
            model, name, passes["train"][0], stats, changed), [])
    notes += state.guarded("notes", notes, lambda: compare.notes(runs, model, name), [])
    partial["notes"] = tuple(notes)
    return partial


class PartialFailure(ExampleFailed):
    def __init__(self, failure: Failure, partial: dict[str, Any]) -> None:
        super().__init__(failure)
        self.partial = partial


def run_example(
    request: ExampleRequest, numpy_print: dict[str, Any], *, fresh: bool = False
) -> ExampleResult:
    """Run one example here; ``fresh``: this process runs nothing else and exits after it."""
    started = time.perf_counter()
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}

    def label() -> str:
        modes = {"train" if v.training else "eval" for v in namespace.values() if isinstance(v, nn.Module)}
        return modes.pop() if len(modes) == 1 else ("mixed" if modes else "")

    setup = Capture(request.max_output, label if not request.compared else lambda: "")
    fields: dict[str, Any] = {}
    failure = None
    with isolated(numpy_print, fresh=fresh), memory.limited(request.memory_limit):
        seed_all(request.seed)
        try:
            namespace["device"] = device_for(request)
            try:
                with redirected(setup):
                    run_code(request.code, namespace)
            except BaseException as exc:  # noqa: BLE001  # the example's failure, reported
                raise ExampleFailed(failure_from(exc, kind_of(exc), limit=request.memory_limit)) from None
            if request.compared:
                fields = run_compared(request, namespace, setup)
        except PartialFailure as failed:
            failure, fields = failed.failure, failed.partial
        except ExampleFailed as failed:
            failure = failed.failure
    if request.device != "cpu" and "device" in namespace:  # the page says where it ran
        fields.setdefault("extra", {})["device"] = namespace["device"].type
    fields["runs"] = tuple(fields.get("runs", ()))
    fields["truncated"] = (("printed output",) if setup.cut else ()) + tuple(
        f"model.{run.mode}() output" for run in fields["runs"] if run.truncated
    )
    if request.compared:
        fields["setup_output"] = setup.text()
    else:
        fields["segments"] = setup.segments()
    return ExampleResult(failure=failure, seconds=round(time.perf_counter() - started, 4), **fields)

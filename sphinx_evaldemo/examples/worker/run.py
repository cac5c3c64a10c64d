"""Running one example in this process: setup, the modes' passes, the comparison."""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .. import compare, detect, trace, why
from ..model import (
    ExampleRequest,
    ExampleResult,
    Failure,
    Mode,
    ModeRun,
)
from . import inputs, memory, script, state
from .capture import Capture, truncate
from .failures import ExampleFailed, failure_from, kind_of, redirected, run_code
from .start import isolated, seed_all


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
    """A copy of the input for one harness pass (the lazy-module pass, before the modes)."""
    return inputs.input_copies(value, "").fresh()


def _no_trace(index: int) -> None:
    """The default for :func:`run_mode`'s ``on_pass``: nothing is traced."""


def enter(model: nn.Module, mode: Mode) -> None:
    """Put the model in the mode as a user does, so a model's own ``train()``/``eval()`` runs."""
    if mode == "train":
        model.train()
    else:
        model.eval()


def run_mode(
    request: ExampleRequest, mode: Mode, model: nn.Module, value: Any,
    on_pass: Callable[[int], None] = _no_trace, buffer_name: Callable[[str], str] = str,
) -> tuple[ModeRun, Any]:
    """The mode's passes, each on a fresh copy of the input, each recorded as it ends.

    ``model`` is this mode's own copy and ``value`` the input as evaluated (a
    :class:`inputs.InputCopies`, or a value that is copied per pass in the same way).

    The output is printed and copied right after its pass, so an in-place module
    (``Dropout(inplace=True)``) or a later pass cannot change what the page shows.
    The determinism check is one more pass whose printed output is discarded.
    ``on_pass(n)`` is called before pass ``n`` (0, 1, ...; the check is pass 1 when
    ``:repeat:`` is 1) and with -1 after the last: the trace records passes 0 and 1.
    """
    started = time.perf_counter()
    copies = value if isinstance(value, inputs.InputCopies) else inputs.input_copies(value, "")
    printed = Capture(request.max_output)
    try:
        with redirected(printed):  # what a model's own train()/eval() prints is the mode's
            enter(model, mode)
    except BaseException as exc:  # noqa: BLE001  # the model's own train()/eval() failed
        failure = failure_from(exc, kind_of(exc), f"model.{mode}(): ", request.memory_limit)
        raise ExampleFailed(failure) from None
    seed_all(request.seed)
    no_grad = request.no_grad and mode == "eval"
    before = {n: b.detach().clone() for n, b in model.named_buffers()}
    texts: list[str] = []
    kept: list[Any] = []
    grad = None
    memory.reset_peak()
    try:
        with redirected(printed):
            for index in range(request.repeat):
                on_pass(index)
                out = _call(model, copies.fresh(), no_grad)
                texts.append(repr(out))
                kept.append(compare.snapshot(out))
                grad = compare.requires_grad(out) if grad is None else grad
        changed = tuple(
            buffer_name(n) for n, b in model.named_buffers()
            if n not in before or compare.equal(before[n], b) is False
        )
        if len(kept) > 1:
            second = kept[1]
        else:
            on_pass(1)
            with redirected(Capture(1000)):
                second = compare.snapshot(_call(model, copies.fresh(), no_grad))
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


def _input_value(request: ExampleRequest, namespace: dict[str, Any], model: nn.Module, setup: Capture) -> Any:
    """The ``:input:`` value, on the example's device; a generator or iterator is refused."""
    try:
        with redirected(setup):
            value = eval(request.input or "", namespace)  # noqa: S307  # the page's own expression
            if request.device != "cpu":
                model.to(namespace["device"])
                value = _to(value, namespace["device"])
    except BaseException as exc:  # noqa: BLE001
        raise ExampleFailed(failure_from(exc, "input", prefix=f":input: {request.input!r} failed: ")) from None
    found = inputs.iterator_in(value)
    if found is not None:
        where, kind = found
        what = f"is a {kind}" if not where else f"holds a {kind} at {where}"
        raise ExampleFailed(Failure("input", (
            f":input: {request.input!r} {what}: an iterator is used up by the first mode, so the "
            "second would get what is left of it; pass a tensor or a tuple instead "
            "(for instance torch.stack(list(...)) or tuple(...))")))
    return value


def _varied_names(name: str, model: nn.Module, compared: list[trace.Call]) -> tuple[str, ...]:
    return tuple(detect.access_path(name, q, model) for q in trace.varied(compared))


def run_compared(request: ExampleRequest, namespace: dict[str, Any], setup: Capture) -> dict[str, Any]:
    name, model = find_model(namespace, request.model)
    broken = detect.broken(model, name)
    if broken:
        raise ExampleFailed(Failure("model", broken))
    value = _input_value(request, namespace, model, setup)
    _materialise(model, value, setup)
    notes: list[str] = []
    found = state.guarded("list of mode-dependent modules", notes,
                          lambda: detect.mode_dependent(model, name), ())
    try:
        start = state.take(model, name)
    except state.StateFailed as failed:
        raise ExampleFailed(failed.failure) from None
    if start.note:
        notes.append(start.note)
    copies = inputs.input_copies(value, f"`{request.input}`")
    if copies.note:
        notes.append(copies.note)
    stats = state.guarded("running statistics", notes, lambda: why.before(model), {})
    passes: dict[Mode, tuple[list[trace.Call], list[trace.Call]]] = {}
    tracing = len(request.modes) == 2
    failed_hooks: list[str] = []
    runs: list[ModeRun] = []
    firsts: dict[str, Any] = {}
    # the model's own name titles the panels (``net.train()``)
    partial: dict[str, Any] = {"mode_dependent": found, "runs": runs, "extra": {"model": name}}
    for mode in request.modes:
        try:
            own = start.model_for(mode)
        except state.StateFailed as failed:
            raise PartialFailure(failed.failure, partial) from None
        # the hooks go on the copy this mode runs, whose access paths are the model's own
        recorder = trace.Recorder(own)
        traced = tracing and state.guarded("trace", notes, recorder.attach, False) is None
        tracing = traced  # hooks that cannot go on one copy cannot go on the next

        def on_pass(index: int, recorder: trace.Recorder = recorder, traced: bool = traced,
                    mode: Mode = mode) -> None:
            """Pass 0 of each mode is its reference; pass 1 (the check) is compared with it."""
            if not traced or index not in (0, 1):
                recorder.stop()
            elif index == 0:
                passes[mode] = (recorder.reference(), [])
            else:
                passes[mode] = (passes[mode][0], recorder.compare(passes[mode][0]))

        def buffer_name(qualname: str, own: nn.Module = own) -> str:
            owner, _, buffer = qualname.rpartition(".")
            return f"{detect.access_path(name, owner, own)}.{buffer}"

        try:
            run, first = run_mode(request, mode, own, copies, on_pass, buffer_name)
        except ExampleFailed as failed:
            raise PartialFailure(failed.failure, partial) from None
        finally:
            recorder.detach()
        if recorder.failed:
            failed_hooks.append(recorder.failed)
            tracing = False
        if traced and not recorder.failed and run.deterministic is False and mode in passes:
            varied = state.guarded("list of modules that varied", notes, functools.partial(
                _varied_names, name, own, passes[mode][1]), ())
            run = dataclasses.replace(run, varied=varied)
        runs.append(run)
        firsts[mode] = first
    if failed_hooks:
        notes.append(f"the trace stopped: a hook failed ({failed_hooks[0]})")
    if len(request.modes) == 2:
        a, b = request.modes
        partial["comparison"] = compare.comparison((a, b), firsts[a], firsts[b])
        if not failed_hooks and a in passes and b in passes:
            partial["trace"] = state.guarded("trace", notes, lambda: trace.build(
                (a, b), passes[a][0], passes[b][0], model, name), None)
    if not failed_hooks and "train" in passes and runs:  # the page's first sentence
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


def run_written(
    request: ExampleRequest, numpy_print: dict[str, Any], *, fresh: bool = False,
    output_fd: int | None = None, token: str = "",
) -> ExampleResult:
    """Run the code as ``python example.py`` runs it (see :mod:`.script`).

    ``output_fd``: the pipe to the warm parent, which reads fd 1 and 2 and labels the
    segments itself; without it the segments are taken here.
    """
    started = time.perf_counter()
    failure = None
    run = script.Script(request.max_output, fresh=fresh, output_fd=output_fd, token=token)
    namespace = run.namespace
    with isolated(numpy_print, fresh=fresh), memory.limited(request.memory_limit):
        seed_all(request.seed)
        with run:
            try:
                namespace["device"] = device_for(request)
                run_code(request.code, namespace)
            except ExampleFailed as failed:
                failure = failed.failure
            except BaseException as exc:  # noqa: BLE001  # the example's failure, reported
                failure = failure_from(exc, kind_of(exc), limit=request.memory_limit)
            run.finish()  # threads and atexit handlers print as at the interpreter's exit
    segments, cut = run.segments()
    fields: dict[str, Any] = {}
    if request.device != "cpu" and "device" in namespace:  # the page says where it ran
        fields["extra"] = {"device": namespace["device"].type}
    return ExampleResult(
        failure=failure, seconds=round(time.perf_counter() - started, 4), segments=segments,
        truncated=("printed output",) if cut else (), **fields,
    )


def run_example(
    request: ExampleRequest, numpy_print: dict[str, Any], *, fresh: bool = False,
    output_fd: int | None = None, token: str = "",
) -> ExampleResult:
    """Run one example here; ``fresh``: this process runs nothing else and exits after it."""
    if not request.compared:
        return run_written(request, numpy_print, fresh=fresh, output_fd=output_fd, token=token)
    started = time.perf_counter()
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    setup = Capture(request.max_output)
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
    fields["setup_output"] = setup.text()
    return ExampleResult(failure=failure, seconds=round(time.perf_counter() - started, 4), **fields)

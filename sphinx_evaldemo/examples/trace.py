"""The divergence trace: each module call's output in both modes, from forward hooks (worker only).

Hooks sit on the model's leaf modules, on the modules whose own code reads the mode
(``MultiheadAttention`` computes its dropout inside, with no child to hook) and on the
model itself. A pass records, per call in call order, a checksum of the inputs and of
the output, and a detached copy of the output while a budget of elements lasts; the
determinism pass records checksums only. Two passes' records are then paired call by
call (``net.rnn`` and ``net.rnn (call 2)``) to say where they first part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import compare, detect
from .model import LayerDiff, Mode, Trace

#: Output elements copied per pass for exact figures; past it, checksums only.
ELEMENT_BUDGET = 1 << 22

#: Calls recorded per pass; a model that makes more is traced up to here.
MAX_CALLS = 20000

#: Rows of the per-layer table kept in a result (the rest are counted).
MAX_ROWS = 24

#: Rows shown before the first parting when the table is cut.
CONTEXT = 3


@dataclass(slots=True)
class Call:
    """One call of one hooked module during one pass."""

    qualname: str
    number: int  # 1 for the module's first call in the pass, 2 for the second ...
    start: int
    leaf: bool
    inputs: bytes = b""
    end: int = -1
    outputs: bytes = b""
    value: Any = None  # a detached copy of the output, when the budget allowed


def _digest_leaf(leaf: Any, into: Any) -> None:
    if isinstance(leaf, torch.Tensor):
        data = leaf.detach()
        into.update(f"{data.dtype}{tuple(data.shape)}".encode())
        try:
            flat = data.to("cpu").contiguous().reshape(-1)
            into.update(flat.view(torch.uint8).numpy().tobytes())
        except Exception:  # noqa: BLE001  # quantised, nested, meta tensors: their text
            into.update(repr(data).encode())
    elif leaf is None or isinstance(leaf, bool | int | float | complex | str | bytes):
        into.update(repr(leaf).encode())
    else:  # an arbitrary object: its repr may hold an address, so only its type counts
        into.update(type(leaf).__qualname__.encode())


def digest(value: Any) -> bytes:
    """A checksum of every leaf of a value (tensors by their bytes)."""
    hashed = hashlib.blake2b(digest_size=16)
    for path, leaf in compare.leaves(value):
        hashed.update(path.encode())
        _digest_leaf(leaf, hashed)
    return hashed.digest()


def _elements(value: Any) -> int:
    return sum(leaf.numel() for _, leaf in compare.leaves(value) if isinstance(leaf, torch.Tensor))


@dataclass(slots=True)
class Recorder:
    """Hooks on one model; :meth:`record` turns recording on for one pass."""

    model: nn.Module
    handles: list[Any] = field(default_factory=list)
    calls: list[Call] | None = None  # the pass being recorded, or None
    copies: bool = False
    budget: int = 0
    clock: int = 0
    pending: dict[int, list[Call]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    failed: str = ""  # why the trace stopped, if a hook failed

    def attach(self) -> None:
        for qualname, module in self.model.named_modules():
            leaf = not module._modules
            if leaf or not qualname or detect.reads_mode(module):
                self.handles.append(module.register_forward_pre_hook(
                    self._before(qualname, leaf), with_kwargs=True))
                self.handles.append(module.register_forward_hook(self._after))

    def detach(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def record(self, copies: bool) -> list[Call]:
        """Start a pass; the list it returns fills as the pass runs."""
        self.calls, self.copies, self.budget = [], copies, ELEMENT_BUDGET
        self.clock, self.pending, self.counts = 0, {}, {}
        return self.calls

    def stop(self) -> None:
        self.calls = None

    def _before(self, qualname: str, leaf: bool) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, kwargs: Any) -> None:
            calls = self.calls
            if calls is None or len(calls) >= MAX_CALLS:
                return
            try:
                number = self.counts[qualname] = self.counts.get(qualname, 0) + 1
                call = Call(qualname, number, self.clock, leaf, digest((args, kwargs)))
                self.clock += 1
                calls.append(call)
                self.pending.setdefault(id(module), []).append(call)
            except Exception as exc:  # noqa: BLE001  # the trace must never break the example
                self._fail(exc)

        return hook

    def _after(self, module: nn.Module, args: Any, output: Any) -> None:
        stack = self.pending.get(id(module))
        if self.calls is None or not stack:
            return
        try:
            call = stack.pop()
            call.end, self.clock = self.clock, self.clock + 1
            call.outputs = digest(output)
            size = _elements(output)
            if self.copies and size <= self.budget:
                self.budget -= size
                call.value = compare.snapshot(output)
        except Exception as exc:  # noqa: BLE001  # as above
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.failed = f"{type(exc).__name__}: {exc}"
        self.calls = None


def _label(qualname: str, number: int, names: dict[str, str], repeated: set[str]) -> str:
    name = names[qualname]
    return f"{name} (call {number})" if qualname in repeated else name


def _diff(a: Call, b: Call) -> tuple[bool, float | None, int | None, int | None, str]:
    """``(equal, largest, differing, total, note)`` of two calls' outputs."""
    if a.value is None or b.value is None or a.end < 0 or b.end < 0:
        return a.outputs == b.outputs, None, None, None, ""
    leaves = compare.diff_leaves(a.value, b.value)
    measured = [leaf for leaf in leaves if leaf.total is not None]
    notes = sorted({leaf.note for leaf in leaves if leaf.note})
    if not measured:
        return all(leaf.equal for leaf in leaves), None, None, None, "; ".join(notes)
    largest = max(leaf.max_abs_diff or 0.0 for leaf in measured)
    differing = sum(leaf.differing or 0 for leaf in measured)
    total = sum(leaf.total or 0 for leaf in measured)
    return all(leaf.equal for leaf in leaves), largest, differing, total, "; ".join(notes)


def _innermost(found: list[Call]) -> list[Call]:
    """Drop calls that enclose another call of the list (a block around its dropout)."""
    return [
        outer for outer in found
        if not any(outer.start < inner.start and inner.end < outer.end for inner in found)
    ]


def pair(first: list[Call], second: list[Call]) -> list[tuple[Call, Call | None]]:
    other = {(call.qualname, call.number): call for call in second}
    return [(call, other.get((call.qualname, call.number))) for call in first]


def varied(first: list[Call], second: list[Call]) -> list[str]:
    """Qualnames of the innermost calls whose output changed between two passes on equal inputs."""
    found = [a for a, b in pair(first, second)
             if b is not None and a.inputs == b.inputs and a.outputs != b.outputs]
    return [call.qualname for call in _innermost(found)]


def build(
    modes: tuple[Mode, Mode], first: list[Call], second: list[Call], model: nn.Module, name: str
) -> Trace:
    """Pair the two modes' calls and say where they part, with a capped table of the calls."""
    modules = dict(model.named_modules())
    names = {qualname: detect.access_path(name, qualname, model) for qualname in modules}
    repeated = {call.qualname for call in first + second if call.number > 1}
    paired = pair(first, second)
    seen = {(call.qualname, call.number) for call in first}
    extra = [call for call in second if (call.qualname, call.number) not in seen]
    diffs = {id(a): _diff(a, b) for a, b in paired if b is not None}
    parting = _innermost([
        a for a, b in paired if b is not None and a.inputs == b.inputs and not diffs[id(a)][0]
    ])
    parts_at = {id(call) for call in parting}
    rows: list[LayerDiff] = []
    for a, b in paired:
        if not a.leaf and id(a) not in parts_at:
            continue  # containers are hooked to find partings, not listed
        kind, settings, _ = detect.describe(modules[a.qualname])
        label = _label(a.qualname, a.number, names, repeated)
        if b is None:
            rows.append(LayerDiff(label, kind, settings, equal=False,
                                  note=f"called in {modes[0]} only"))
            continue
        equal, largest, differing, total, note = diffs[id(a)]
        rows.append(LayerDiff(
            label, kind, settings, inputs_equal=a.inputs == b.inputs, equal=equal,
            max_abs_diff=largest, differing=differing, total=total,
            parts=id(a) in parts_at, note=note,
        ))
    for call in extra:
        kind, settings, _ = detect.describe(modules[call.qualname])
        rows.append(LayerDiff(_label(call.qualname, call.number, names, repeated), kind, settings,
                              equal=False, note=f"called in {modes[1]} only"))
    return _capped(modes, rows, [_label(c.qualname, c.number, names, repeated) for c in parting])


def _capped(modes: tuple[Mode, Mode], rows: list[LayerDiff], parting: list[str]) -> Trace:
    start = 0
    if len(rows) > MAX_ROWS:
        first = next((index for index, row in enumerate(rows) if row.parts), 0)
        start = max(0, min(first - CONTEXT, len(rows) - MAX_ROWS))
    shown = rows[start:start + MAX_ROWS]
    rest = rows[start + MAX_ROWS:]
    largest = max((row.max_abs_diff for row in rest if row.max_abs_diff is not None), default=None)
    return Trace(
        modes=modes, layers=tuple(shown), parting=tuple(parting), calls=len(rows),
        differing_calls=sum(not row.equal for row in rows), before=start, after=len(rest),
        differing_after=sum(not row.equal for row in rest),
        largest_after=largest,
    )

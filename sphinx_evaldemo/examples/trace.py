"""The divergence trace: each module call's output in both modes, from forward hooks (worker only).

Hooks sit on the model's leaf modules, on the modules whose own code reads the mode
(``MultiheadAttention`` computes its dropout inside, with no child to hook) and on the
model itself. Each mode's first pass is a *reference* pass: per call, in call order, it
keeps a copy of the inputs and of the output (a tensor that is the previous call's
output is kept once), while a budget of elements lasts, and a checksum past it. The
two modes' reference passes are then paired call by call (``net.rnn`` and ``net.rnn
(call 2)``) to say where they first part. The determinism pass is *compared* live
against its mode's reference pass, in the hooks, keeping nothing.
"""

from __future__ import annotations

import contextlib
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from . import compare, detect, equality
from .model import LayerDiff, LeafDiff, Mode, Nuance, Trace

#: Elements copied per reference pass for exact figures; past it, checksums only.
ELEMENT_BUDGET = 1 << 22

#: Calls recorded per pass; a model that makes more is traced up to here.
MAX_CALLS = 20000

#: Rows of the per-layer table kept in a result (the rest are counted).
MAX_ROWS = 24

#: Rows shown before the first parting when the table is cut.
CONTEXT = 3


class Sum(NamedTuple):
    """A tensor past the budget: a CRC-32 of its dtype, shape and bytes (a chance match
    is one in four billion) and its size."""

    crc: int
    numel: int


class Opaque(NamedTuple):
    """A leaf that is neither a tensor, an array nor a plain value: its type only."""

    type: str


#: A leaf as a reference pass keeps it: a tensor's copy, its checksum, an array's copy,
#: a plain value, or the type of anything else.
Kept = Any


def checksum(tensor: torch.Tensor) -> Sum:
    data = tensor.detach()
    crc = zlib.crc32(f"{data.dtype}{tuple(data.shape)}".encode())
    try:
        crc = zlib.crc32(data.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().data, crc)
    except Exception:  # noqa: BLE001  # quantised, nested, meta tensors: their text
        crc = zlib.crc32(repr(data).encode(), crc)
    return Sum(crc, data.numel())


def kept_value(leaf: Any) -> Kept:
    """A non-tensor leaf as kept: plain values and arrays as values, anything else by its type
    (its attributes are walked as leaves of their own where it has no ``__eq__``)."""
    if isinstance(leaf, np.ndarray | np.generic):
        return leaf.copy()
    if leaf is None or isinstance(leaf, bool | int | float | complex | str | bytes):
        return leaf
    return Opaque(type(leaf).__qualname__)


def diffs(x: Kept, y: Kept) -> tuple[LeafDiff, ...]:
    """Two kept leaves by the one equality; a checksum (past the budget) only by its bytes."""
    if isinstance(x, Sum) or isinstance(y, Sum):
        x = checksum(x) if isinstance(x, torch.Tensor) else x
        y = checksum(y) if isinstance(y, torch.Tensor) else y
        return (LeafDiff("", equal=x == y, total=x.numel if isinstance(x, Sum) else None),)
    return tuple(equality.compare(x, y))


def _same_kept(x: Kept, y: Kept) -> bool:
    """No difference (equal, up to rounding, or not comparable: no evidence of one)."""
    return all(equality.kind(diff) != "differ" for diff in diffs(x, y))


@dataclass(slots=True)
class Call:
    """One call of one hooked module during one pass."""

    qualname: str
    number: int  # 1 for the module's first call in the pass, 2 for the second ...
    start: int
    leaf: bool
    end: int = -1
    #: a reference pass's copies: ``(path, kept)`` per leaf of the inputs and of the output
    inputs: list[tuple[str, Kept]] = field(default_factory=list)
    output: list[tuple[str, Kept]] = field(default_factory=list)
    #: a compared pass's verdicts against the reference call (None: no such call there)
    inputs_equal: bool | None = None
    equal: bool | None = None


class _Memo:
    """What is known about tensors of the running pass while they are unchanged (their version)."""

    def __init__(self) -> None:
        self.known: dict[int, tuple[weakref.ref[torch.Tensor], int, Any]] = {}

    def get(self, tensor: torch.Tensor, key: object = None) -> Any:
        found = self.known.get(id(tensor))
        if found and found[0]() is tensor and found[1] == tensor._version:
            value, seen_key = found[2]
            if seen_key is key:
                return value
        return None

    def put(self, tensor: torch.Tensor, value: Any, key: object = None) -> Any:
        with contextlib.suppress(TypeError):  # a tensor type without weak references: not kept
            self.known[id(tensor)] = (weakref.ref(tensor), tensor._version, (value, key))
        return value


@dataclass(slots=True)
class Recorder:
    """Hooks on one model: :meth:`reference` or :meth:`compare` turns them on for one pass."""

    model: nn.Module
    handles: list[Any] = field(default_factory=list)
    calls: list[Call] | None = None  # the pass being recorded, or None
    against: dict[tuple[str, int], Call] | None = None  # a compared pass's reference
    budget: int = 0
    clock: int = 0
    pending: dict[int, list[Call]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    memo: _Memo = field(default_factory=_Memo)
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

    def _start(self, against: list[Call] | None) -> list[Call]:
        self.calls, self.budget, self.clock = [], ELEMENT_BUDGET, 0
        self.pending, self.counts, self.memo = {}, {}, _Memo()
        self.against = None if against is None else {(c.qualname, c.number): c for c in against}
        return self.calls

    def reference(self) -> list[Call]:
        """Start a reference pass; the list it returns fills as the pass runs."""
        return self._start(None)

    def compare(self, reference: list[Call]) -> list[Call]:
        """Start a pass compared, call by call, with an earlier reference pass."""
        return self._start(reference)

    def stop(self) -> None:
        self.calls = None

    def _keep(self, value: Any) -> list[tuple[str, Kept]]:
        kept: list[tuple[str, Kept]] = []
        for path, leaf in compare.leaves(value):
            if not isinstance(leaf, torch.Tensor):
                kept.append((path, kept_value(leaf)))
                continue
            copy = self.memo.get(leaf)
            if copy is None:
                size = leaf.numel()
                if size <= self.budget:
                    self.budget -= size
                    copy = leaf.detach().clone()
                else:
                    copy = checksum(leaf)
                self.memo.put(leaf, copy)
            kept.append((path, copy))
        return kept

    def _matches(self, value: Any, kept: list[tuple[str, Kept]]) -> bool:
        live = list(compare.leaves(value))
        if [path for path, _ in live] != [path for path, _ in kept]:
            return False
        for (_, leaf), (_, other) in zip(live, kept, strict=True):
            if not isinstance(leaf, torch.Tensor):
                if not _same_kept(kept_value(leaf), other):
                    return False
                continue
            verdict = self.memo.get(leaf, other)
            if verdict is None:
                verdict = self.memo.put(leaf, _same_kept(leaf.detach(), other), other)
            if not verdict:
                return False
        return True

    def _before(self, qualname: str, leaf: bool) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, kwargs: Any) -> None:
            calls = self.calls
            if calls is None or len(calls) >= MAX_CALLS:
                return
            try:
                number = self.counts[qualname] = self.counts.get(qualname, 0) + 1
                call = Call(qualname, number, self.clock, leaf)
                value = (args, kwargs) if kwargs else args
                if self.against is None:
                    call.inputs = self._keep(value)
                elif (other := self.against.get((qualname, number))) is not None:
                    call.inputs_equal = self._matches(value, other.inputs)
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
            if self.against is None:
                call.output = self._keep(output)
            elif (other := self.against.get((call.qualname, call.number))) is not None:
                call.equal = self._matches(output, other.output)
        except Exception as exc:  # noqa: BLE001  # as above
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.failed = f"{type(exc).__name__}: {exc}"
        self.calls = None


def _label(qualname: str, number: int, names: dict[str, str], repeated: set[str]) -> str:
    name = names[qualname]
    return f"{name} (call {number})" if qualname in repeated else name


class _Pairs:
    """Two reference passes compared call by call; equal kept leaves are compared once."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, int], tuple[LeafDiff, ...]] = {}

    def diffs(self, x: Kept, y: Kept) -> tuple[LeafDiff, ...]:
        key = (id(x), id(y))
        if key not in self.seen:
            self.seen[key] = diffs(x, y)
        return self.seen[key]

    def same(self, x: Kept, y: Kept) -> bool:
        return all(equality.kind(diff) != "differ" for diff in self.diffs(x, y))

    def inputs_equal(self, a: Call, b: Call) -> bool:
        return [p for p, _ in a.inputs] == [p for p, _ in b.inputs] and all(
            self.same(x, y) for (_, x), (_, y) in zip(a.inputs, b.inputs, strict=True))

    def output(self, a: Call, b: Call) -> LayerDiff:
        """The figures of two calls' outputs, leaf by leaf (name and type filled in later)."""
        if [p for p, _ in a.output] != [p for p, _ in b.output]:
            return LayerDiff("", "", equal=False, max_abs_diff=None, differing=None, total=None,
                             note="outputs of different structure")
        xs, ys = [x for _, x in a.output], [y for _, y in b.output]
        if all(type(v) is float for v in (*xs, *ys)):  # a list of numbers: one batch
            found = list(equality.compare(xs, ys))
        else:
            found = [diff for x, y in zip(xs, ys, strict=True) for diff in self.diffs(x, y)]
        verdict = equality.verdict(found)
        nuance: Nuance = "rounding" if verdict == "rounding" else (
            "incomparable" if verdict == "incomparable" else "")
        equal = verdict in ("equal", "rounding")
        notes = [diff.note for diff in found if diff.note and not diff.equal]
        unmeasured = any(not diff.equal and diff.differing is None for diff in found)
        if unmeasured or (verdict == "incomparable" and not equal):
            return LayerDiff("", "", equal=equal, max_abs_diff=None, differing=None, total=None,
                             note="; ".join(dict.fromkeys(notes)), verdict=nuance)
        largest = equality.largest(diff.max_abs_diff for diff in found
                                   if equality.kind(diff) == ("rounding" if equal else "differ"))
        return LayerDiff("", "", equal=equal, verdict=nuance, max_abs_diff=largest or 0.0,
                         differing=sum(diff.differing or 0 for diff in found),
                         total=sum(diff.total or 0 for diff in found))


def _innermost(found: list[Call]) -> list[Call]:
    """Drop calls that enclose another call of the list (a block around its dropout)."""
    return [
        outer for outer in found
        if not any(outer.start < inner.start and inner.end < outer.end for inner in found)
    ]


def varied(compared: list[Call]) -> list[str]:
    """Qualnames of the innermost calls of a compared pass whose output changed on equal inputs."""
    found = [call for call in compared if call.inputs_equal and call.equal is False]
    return [call.qualname for call in _innermost(found)]


def build(
    modes: tuple[Mode, Mode], first: list[Call], second: list[Call], model: nn.Module, name: str
) -> Trace:
    """Pair the two modes' reference passes and say where they part, with a capped table."""
    modules = dict(model.named_modules())
    names = {qualname: detect.access_path(name, qualname, model) for qualname in modules}
    repeated = {call.qualname for call in first + second if call.number > 1}
    other = {(call.qualname, call.number): call for call in second}
    seen = {(call.qualname, call.number) for call in first}
    pairs = _Pairs()
    found: dict[int, LayerDiff] = {}
    for a in first:
        b = other.get((a.qualname, a.number))
        if b is not None:
            diff = pairs.output(a, b)
            found[id(a)] = LayerDiff("", "", inputs_equal=pairs.inputs_equal(a, b), equal=diff.equal,
                                     max_abs_diff=diff.max_abs_diff, differing=diff.differing,
                                     total=diff.total, note=diff.note, verdict=diff.verdict)
    parting = _innermost([a for a in first if id(a) in found
                          and found[id(a)].inputs_equal and _differs(found[id(a)])])
    parts_at = {id(call) for call in parting}
    rows: list[LayerDiff] = []
    for a in first:
        if not a.leaf and id(a) not in parts_at:
            continue  # containers are hooked to find partings, not listed
        kind, settings = detect.short(modules[a.qualname])
        label = _label(a.qualname, a.number, names, repeated)
        if id(a) not in found:
            rows.append(LayerDiff(label, kind, settings, equal=False, note=f"called in {modes[0]} only"))
            continue
        diff = found[id(a)]
        rows.append(LayerDiff(
            label, kind, settings, inputs_equal=diff.inputs_equal, equal=diff.equal,
            max_abs_diff=diff.max_abs_diff, differing=diff.differing, total=diff.total,
            parts=id(a) in parts_at, note=diff.note, verdict=diff.verdict,
        ))
    for call in second:
        if (call.qualname, call.number) not in seen and call.leaf:
            kind, settings = detect.short(modules[call.qualname])
            rows.append(LayerDiff(_label(call.qualname, call.number, names, repeated), kind,
                                  settings, equal=False, note=f"called in {modes[1]} only"))
    return _capped(modes, rows, [_label(c.qualname, c.number, names, repeated) for c in parting])


def _differs(row: LayerDiff) -> bool:
    return not row.equal and row.verdict != "incomparable"


def _capped(modes: tuple[Mode, Mode], rows: list[LayerDiff], parting: list[str]) -> Trace:
    start = 0
    if len(rows) > MAX_ROWS:
        first = next((index for index, row in enumerate(rows) if row.parts), 0)
        start = max(0, min(first - CONTEXT, len(rows) - MAX_ROWS))
    shown = rows[start:start + MAX_ROWS]
    rest = rows[start + MAX_ROWS:]
    largest = equality.largest(row.max_abs_diff for row in rest if _differs(row))
    return Trace(
        modes=modes, layers=tuple(shown), parting=tuple(parting), calls=len(rows),
        differing_calls=sum(map(_differs, rows)), before=start, after=len(rest),
        differing_after=sum(map(_differs, rest)),
        largest_after=largest,
    )

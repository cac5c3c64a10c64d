"""The one equality: two values compared leaf by leaf, by value (worker only).

Every verdict that says "same" or "differs" (the outputs, the determinism check, the
buffers, the per-layer trace, the marks) comes from :func:`compare`. Two values are
equal when they have the same type and structure, and each pair of leaves has the same
shape, dtype, layout and values: integers as integers (Python ints of any size, int64
exactly), floats as IEEE values (NaN equals NaN in the same place, ``-0.0`` equals
``0.0`` as IEEE compares them). Floats at most :data:`ULPS` units in the last place of
their dtype apart are "equal up to rounding", a verdict of its own. A layout that cannot
be compared element by element is converted losslessly (sparse to dense, quantized to
its integers with the scale and zero point compared, nested to its components) or is
"incomparable" with the reason; nothing here raises.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from .elementwise import as_float, elements, largest_difference
from .model import LeafDiff, outcome

#: Tensors up to this many elements say which elements differ (for the marks).
MAX_MARKED = 256

#: Elements a sparse tensor may be densified to for an element-by-element comparison.
MAX_DENSE = 1 << 24

#: Containers walked this deep; deeper values are not compared.
MAX_DEPTH = 32


# --- structure ---------------------------------------------------------------------------


def _key(key: Any) -> str:
    """A mapping key as a path step: ``["logits"]``; other keys ``[key 0]``, so a dict
    never shares a path with a list (``[0]``)."""
    if isinstance(key, str):
        return f"[{json.dumps(key, ensure_ascii=False)}]"
    return f"[key {key!r}]"


def _own_eq(value: Any) -> bool:
    """Whether the value's class says what equal means (not ``object``'s identity)."""
    found: object = type(value).__eq__
    return found is not object.__eq__


def _plain_object(value: Any) -> bool:
    """An object compared by its attributes: no ``__eq__`` of its own, not a module or a type."""
    return (
        not _own_eq(value)
        and hasattr(value, "__dict__")
        and not isinstance(value, nn.Module | type)
        and not callable(value)
    )


#: Plain values: leaves, and immutable.
PLAIN = frozenset({float, int, bool, complex, str, bytes, type(None)})
#: Types that are always leaves (asked first: most leaves are one of them).
ATOMS = PLAIN | {torch.Tensor, nn.Parameter}


def children(value: Any) -> list[tuple[str, Any]] | None:
    """The path steps and items of a container; None for a leaf."""
    if type(value) in ATOMS or isinstance(value, torch.Tensor):
        return None
    if isinstance(value, Mapping):
        return [(_key(key), item) for key, item in value.items()]
    if isinstance(value, tuple):
        names = getattr(value, "_fields", None) or getattr(type(value), "__match_args__", None)
        if names and len(names) == len(value):  # named tuples, torch.return_types
            return [(f".{name}", item) for name, item in zip(names, value, strict=True)]
        return [(f"[{index}]", item) for index, item in enumerate(value)]
    if isinstance(value, list):
        return [(f"[{index}]", item) for index, item in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f".{spec.name}", getattr(value, spec.name, None)) for spec in dataclasses.fields(value)]
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return [(f"[{index}]", item) for index, item in enumerate(value.tolist())]
    if _plain_object(value):
        return [(f".{name}", item) for name, item in vars(value).items()]
    return None


def leaves(value: Any, path: str = "", within: frozenset[int] = frozenset()) -> Iterator[tuple[str, Any]]:
    """``(path, leaf)`` pairs of a value, with the paths :func:`compare` gives (a container
    that holds itself, or one nested past :data:`MAX_DEPTH`, is a leaf)."""
    found = children(value) if len(within) < MAX_DEPTH and id(value) not in within else None
    if found is None:
        yield path or "output", value
        return
    for step, item in found:
        yield from leaves(item, path + step, within | {id(value)})


def _type(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def compare(
    a: Any, b: Any, path: str = "", within: frozenset[tuple[int, int]] = frozenset(),
) -> Iterator[LeafDiff]:
    """Compare two values leaf by leaf: one :class:`LeafDiff` per leaf (or per mismatch)."""
    name = path or "output"
    if type(a) is not type(b):
        yield LeafDiff(name, equal=False, note=f"types differ: {_type(a)} vs {_type(b)}")
        return
    if (id(a), id(b)) in within:  # the same pair again: both contain themselves
        yield _incomparable(name, "a value that contains itself")
        return
    mine, theirs = (children(a), children(b)) if len(within) < MAX_DEPTH else (None, None)
    if mine is None or theirs is None:
        yield _leaf(name, a, b)
        return
    if type(a) in (list, tuple) and len(a) == len(b) and all(type(x) is float for x in (*a, *b)):
        yield from _floats(path, list(a), list(b))  # one batch, the same rule
        return
    other = dict(theirs)
    steps = {step for step, _ in mine}
    for step, item in mine:
        if step in other:
            yield from compare(item, other[step], path + step, within | {(id(a), id(b))})
        else:
            yield LeafDiff(path + step, equal=False, note="present in one output only")
    for step, _ in theirs:
        if step not in steps:
            yield LeafDiff(path + step, equal=False, note="present in one output only")


def verdict(diffs: Iterable[LeafDiff]) -> str:
    """The verdict of a whole value: differ, else incomparable, else rounding, else equal."""
    kinds = {kind(diff) for diff in diffs}
    return next((k for k in ("differ", "incomparable", "rounding") if k in kinds), "equal")


def kind(diff: LeafDiff) -> str:
    """One leaf's verdict: equal, rounding, differ or incomparable."""
    return outcome(diff.equal, diff.verdict)


def largest(values: Iterable[float | None]) -> float | None:
    """The largest of some differences, NaN when one is NaN (never lost to ``max``); None if none."""
    found = [value for value in values if value is not None]
    if any(math.isnan(value) for value in found):
        return math.nan
    return max(found, default=None)


def same(a: Any, b: Any) -> bool | None:
    """True when equal (up to rounding), False when they differ, None when not comparable."""
    found = verdict(list(compare(a, b)))
    return None if found == "incomparable" else found != "differ"


# --- leaves ------------------------------------------------------------------------------


def _incomparable(path: str, why: str) -> LeafDiff:
    return LeafDiff(path, equal=False, verdict="incomparable", note=f"not comparable: {why}")


def _leaf(path: str, x: Any, y: Any) -> LeafDiff:
    try:
        if isinstance(x, torch.Tensor):
            return _tensor(path, x, y)
        if isinstance(x, np.ndarray | np.generic):
            return _array(path, np.asarray(x), np.asarray(y))
        if isinstance(x, bool):
            return LeafDiff(path, equal=x == y, differing=int(x != y), total=1)
        if isinstance(x, int):
            if x == y:
                return LeafDiff(path, equal=True, max_abs_diff=0.0, differing=0, total=1)
            return LeafDiff(path, equal=False, max_abs_diff=as_float(abs(x - y)), differing=1, total=1)
        if isinstance(x, float | complex):
            if x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)):  # no tensor needed
                return LeafDiff(path, equal=True, max_abs_diff=0.0, differing=0, total=1)
            return next(_floats(path, [x], [y], single=True))
        if x is None or isinstance(x, str | bytes):
            return LeafDiff(path, equal=x == y)
        return _object(path, x, y)
    except Exception as exc:  # noqa: BLE001  # a value we cannot read is reported, never raised
        return _incomparable(path, f"{type(exc).__name__}: {exc}")


def _object(path: str, x: Any, y: Any) -> LeafDiff:
    if not _own_eq(x):
        if x is y:
            return LeafDiff(path, equal=True)
        return _incomparable(path, f"a {_type(x)} has no value to compare (no __eq__, no attributes)")
    answer = x == y
    if isinstance(answer, bool | np.bool_):
        return LeafDiff(path, equal=bool(answer))
    return _incomparable(path, f"{_type(x)} == gives a {_type(answer)}, not True or False")


def _floats(path: str, xs: list[Any], ys: list[Any], single: bool = False) -> Iterator[LeafDiff]:
    """Python floats (or complex numbers), compared as float64 (complex128) tensors."""
    dtype = torch.complex128 if any(isinstance(v, complex) for v in (*xs, *ys)) else torch.float64
    x, y = torch.tensor(xs, dtype=dtype), torch.tensor(ys, dtype=dtype)
    exact, close = elements(x, y)
    # each element's difference, as largest_difference gives it for one element
    gaps = (x - y).abs().masked_fill(x.isnan() ^ y.isnan(), math.nan).tolist()
    for index, (e, c, gap) in enumerate(zip(exact.tolist(), close.tolist(), gaps, strict=True)):
        leaf = path or "output" if single else f"{path}[{index}]"
        if e:
            yield LeafDiff(leaf, equal=True, max_abs_diff=0.0, differing=0, total=1)
        elif c:
            yield LeafDiff(leaf, equal=True, verdict="rounding", differing=0, total=1, max_abs_diff=gap)
        else:
            yield LeafDiff(leaf, equal=False, max_abs_diff=gap, differing=1, total=1)


def _array(path: str, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> LeafDiff:
    if x.dtype != y.dtype:
        return LeafDiff(path, equal=False, note=f"dtypes differ: {x.dtype} vs {y.dtype}")
    if x.shape != y.shape:
        return LeafDiff(path, equal=False, note=f"shapes differ: {x.shape} vs {y.shape}")
    if x.dtype.kind in "biufc":
        try:
            tx, ty = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
        except TypeError:  # a NumPy dtype torch lacks (float128): NumPy's own NaN-aware equality
            return LeafDiff(path, equal=bool(np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")))
        return _values(path, tx, ty)
    differs = np.asarray(x != y)
    count = int(differs.sum())
    return LeafDiff(path, equal=count == 0, differing=count, total=int(x.size))


def _tensor(path: str, x: torch.Tensor, y: torch.Tensor) -> LeafDiff:
    x, y = x.detach(), y.detach()
    for what, mine, theirs in (
        ("devices", x.device.type, y.device.type),
        ("layouts", x.layout, y.layout),
        ("dtypes", x.dtype, y.dtype),
    ):
        if mine != theirs:
            return LeafDiff(path, equal=False, note=f"{what} differ: {mine} vs {theirs}")
    if x.is_nested != y.is_nested:
        return LeafDiff(path, equal=False, note="one tensor is nested, the other is not")
    if x.is_nested:
        return _nested(path, x, y)
    if x.shape != y.shape:
        return LeafDiff(path, equal=False, note=f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.is_meta:
        return _incomparable(path, "meta tensors hold no values (same shape and dtype)")
    if x.is_quantized:
        return _quantized(path, x, y)
    if x.layout != torch.strided:
        if x.numel() > MAX_DENSE:
            return _incomparable(path, f"a {x.layout} tensor of {x.numel()} elements is too large to "
                                 "compare element by element")
        x, y = _dense(x), _dense(y)
    return _values(path, x, y)


def _dense(x: torch.Tensor) -> torch.Tensor:
    """A sparse tensor's elements, written into zeros by index (``to_dense`` adds, and a complex
    infinity added to zero becomes NaN); duplicate entries are summed, as the tensor means."""
    coo = (x if x.layout == torch.sparse_coo else x.to_sparse(layout=torch.sparse_coo)).coalesce()
    dense = torch.zeros(coo.shape, dtype=coo.dtype, device=coo.device)
    dense[tuple(coo.indices())] = coo.values()
    return dense


def _nested(path: str, x: torch.Tensor, y: torch.Tensor) -> LeafDiff:
    xs, ys = x.unbind(), y.unbind()
    if len(xs) != len(ys):
        return LeafDiff(path, equal=False, note=f"nested tensors of {len(xs)} and {len(ys)} components")
    for index, (a, b) in enumerate(zip(xs, ys, strict=True)):
        if a.shape != b.shape:
            return LeafDiff(path, equal=False,
                            note=f"component {index} shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if not xs:
        return LeafDiff(path, equal=True, differing=0, total=0)
    flat = _values(path, torch.cat([a.reshape(-1) for a in xs]), torch.cat([b.reshape(-1) for b in ys]))
    return dataclasses.replace(flat, differs_at=None)  # flat indices mean nothing on the page


def _quantized(path: str, x: torch.Tensor, y: torch.Tensor) -> LeafDiff:
    scheme = x.qscheme()
    if scheme != y.qscheme():
        return LeafDiff(path, equal=False, note=f"quantization schemes differ: {scheme} vs {y.qscheme()}")
    params: list[tuple[str, Any, Any]]
    if scheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        params = [("scale", x.q_scale(), y.q_scale()), ("zero point", x.q_zero_point(), y.q_zero_point())]
    else:
        params = [
            ("axis", x.q_per_channel_axis(), y.q_per_channel_axis()),
            ("scales", x.q_per_channel_scales().tolist(), y.q_per_channel_scales().tolist()),
            ("zero points", x.q_per_channel_zero_points().tolist(), y.q_per_channel_zero_points().tolist()),
        ]
    for what, mine, theirs in params:
        if mine != theirs:
            return LeafDiff(path, equal=False, note=f"quantization {what} differ: {mine} vs {theirs}")
    # same parameters: the stored integers decide, exactly; the difference in real units
    found = _values(path, x.int_repr(), y.int_repr())
    if found.equal:
        return found
    return dataclasses.replace(found, max_abs_diff=largest_difference(x.dequantize(), y.dequantize()))


def _values(path: str, x: torch.Tensor, y: torch.Tensor) -> LeafDiff:
    """Two strided tensors of one dtype and shape, element by element."""
    x, y = x.resolve_conj().resolve_neg(), y.resolve_conj().resolve_neg()
    total = x.numel()
    if torch.equal(x, y):  # equal element for element (torch.equal finds NaN unequal: not here)
        return LeafDiff(path, equal=True, max_abs_diff=0.0, differing=0, total=total,
                        differs_at=() if total <= MAX_MARKED else None)
    exact, close = elements(x, y)
    differs = ~close
    count = int(differs.sum())
    marked = tuple(differs.reshape(-1).nonzero().reshape(-1).tolist()) if total <= MAX_MARKED else None
    if count:
        largest = largest_difference(x, y, differs)
        return LeafDiff(path, equal=False, max_abs_diff=largest, differing=count, total=total,
                        differs_at=marked)
    # equal up to rounding: the largest difference says how far (the page shows it)
    near = ~exact
    largest = largest_difference(x, y, near)
    return LeafDiff(path, equal=True, verdict="rounding" if bool(near.any()) else "",
                    max_abs_diff=largest, differing=0, total=total, differs_at=marked)

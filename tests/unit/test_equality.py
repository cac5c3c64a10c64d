"""The one equality, table-driven: dtypes x NaN/inf/±0 placements x layouts x containers,
against verdicts computed here directly with torch (``nextafter`` steps, not bit tricks)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections import namedtuple
from typing import Any

import numpy as np
import pytest
import torch

from sphinx_evaldemo.examples import elementwise, equality
from sphinx_evaldemo.examples.model import LeafDiff

warnings.filterwarnings("ignore", category=UserWarning)  # prototype layouts say so on creation

NAN, INF = math.nan, math.inf
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
COMPLEX = (torch.complex64, torch.complex128)
INTS = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def reference(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per element, computed directly: exactly equal (NaN in both places counts), and equal
    up to rounding (``b`` reached from ``a`` in at most 4 ``nextafter`` steps, both finite)."""
    if a.is_complex():
        parts = [reference(a.real, b.real), reference(a.imag, b.imag)]
        return parts[0][0] & parts[1][0], parts[0][1] & parts[1][1]
    if not a.is_floating_point():
        return a == b, a == b
    exact = (a == b) | (a.isnan() & b.isnan())
    step, reached = a.clone(), torch.zeros_like(exact)
    for _ in range(elementwise.ULPS):
        step = torch.nextafter(step, b)
        reached |= step == b
    return exact, exact | (reached & a.isfinite() & b.isfinite())


def expected(a: torch.Tensor, b: torch.Tensor) -> tuple[str, int, float | None]:
    """The verdict, the number of differing elements and the largest difference."""
    exact, close = reference(a, b)
    differs = ~close
    count = int(differs.sum())
    if not count:
        return ("rounding" if not bool(exact.all()) else "equal"), 0, None
    x, y = a[differs], b[differs]
    if not (a.is_floating_point() or a.is_complex()):
        return "differ", count, float(max(abs(int(p) - int(q)) for p, q in zip(x.tolist(), y.tolist(), strict=True)))
    if bool((x.isnan() ^ y.isnan()).any()):
        return "differ", count, NAN
    if a.dtype in (torch.float16, torch.bfloat16):
        x, y = x.double(), y.double()
    return "differ", count, float((x - y).abs().max())


def _steps(values: torch.Tensor, n: int) -> torch.Tensor:
    """Each value moved ``n`` units in the last place up (in its own dtype)."""
    for _ in range(n):
        values = torch.nextafter(values, torch.full_like(values, INF))
    return values


def float_pairs(dtype: torch.dtype) -> dict[str, tuple[list[float], list[float]]]:
    big = torch.finfo(dtype).max
    base = [0.5, 1.0, 3.0]
    pairs = {
        "same": (base, base),
        "nan-same-place": ([NAN, 1.0, 2.0], [NAN, 1.0, 2.0]),
        "nan-other-place": ([NAN, 1.0, 2.0], [1.0, NAN, 2.0]),
        "nan-vs-number": ([NAN, NAN, NAN], [1.0, 2.0, 3.0]),
        "inf-same": ([INF, -INF, 1.0], [INF, -INF, 1.0]),
        "inf-vs-minus-inf": ([INF, 1.0, 1.0], [-INF, 1.0, 1.0]),
        "inf-vs-largest": ([INF, 1.0, 1.0], [big, 1.0, 1.0]),
        "zero-signs": ([0.0, -0.0, 1.0], [-0.0, 0.0, 1.0]),
        "large": ([1.0, 2.0, 3.0], [1.0, 2.5, -3.0]),
    }
    for n in (1, 4, 5):
        moved = _steps(torch.tensor(base, dtype=dtype), n).double().tolist()
        pairs[f"{n}-ulp"] = (base, moved)
    zero = torch.tensor([0.0], dtype=dtype)
    for up, down in ((2, 2), (3, 2), (3, 0), (5, 0)):  # subnormals, across zero
        pairs[f"{up + down}-ulp-across-zero-{up}"] = (
            _steps(zero, up).double().tolist(), (-_steps(zero, down)).double().tolist())
    top = torch.tensor([big], dtype=dtype)
    for n in (4, 5):  # the largest finite values, stepping down
        lower = top.clone()
        for _ in range(n):
            lower = torch.nextafter(lower, torch.zeros_like(lower))
        pairs[f"{n}-ulp-below-largest"] = ([big], lower.double().tolist())
    return pairs


def int_pairs(dtype: torch.dtype) -> dict[str, tuple[list[int], list[int]]]:
    info = torch.iinfo(dtype)
    pairs = {"same": ([1, 2, 3], [1, 2, 3]), "one-off": ([1, 2, 3], [1, 2, 4]),
             "extremes": ([info.min, 0, info.max], [info.max, 0, info.min])}
    if dtype == torch.int64:
        pairs["2**53"] = ([2**53 + 1, 2**62 + 1], [2**53, 2**62])
    return pairs


CASES: list[tuple[str, torch.Tensor, torch.Tensor]] = []
for _dtype in FLOATS + COMPLEX:
    _real = _dtype.to_real() if _dtype.is_complex else _dtype
    for _name, (_a, _b) in float_pairs(_real).items():
        x, y = torch.tensor(_a, dtype=_real), torch.tensor(_b, dtype=_real)
        if _dtype.is_complex:
            x, y = torch.complex(x, y.flip(0)), torch.complex(y, y.flip(0))
            if _name in ("same", "nan-same-place", "inf-same"):
                y = x.clone()
        CASES.append((f"{_dtype}-{_name}", x, y))
for _dtype in INTS:
    for _name, (_a, _b) in int_pairs(_dtype).items():
        CASES.append((f"{_dtype}-{_name}", torch.tensor(_a, dtype=_dtype), torch.tensor(_b, dtype=_dtype)))
CASES.append(("bool-same", torch.tensor([True, False]), torch.tensor([True, False])))
CASES.append(("bool-flip", torch.tensor([True, False]), torch.tensor([True, True])))


def layouts(x: torch.Tensor, y: torch.Tensor) -> dict[str, tuple[Any, Any, torch.Tensor, torch.Tensor]]:
    """The same pair in each layout torch offers for the dtype, with the strided values
    the reference compares."""
    found = {"strided": (x, y, x, y), "strided-2d": (x.reshape(1, -1), y.reshape(1, -1), x, y)}
    try:
        found["sparse-coo"] = (x.to_sparse(), y.to_sparse(), x, y)
        found["sparse-csr"] = (x.reshape(1, -1).to_sparse_csr(), y.reshape(1, -1).to_sparse_csr(), x, y)
    except (RuntimeError, NotImplementedError):  # a dtype without sparse kernels
        pass
    if x.is_floating_point() or x.is_complex():
        found["nested"] = (torch.nested.nested_tensor([x, x[:1]]), torch.nested.nested_tensor([y, y[:1]]),
                           torch.cat([x, x[:1]]), torch.cat([y, y[:1]]))
    return found


Point = namedtuple("Point", "value")  # a user's plain namedtuple


@dataclasses.dataclass
class Box:
    value: Any


def containers(value: Any, other: Any) -> dict[str, tuple[Any, Any, str]]:
    """The pair wrapped in each container, with the leaf's path."""
    return {
        "bare": (value, other, "output"),
        "list": ([1, value], [1, other], "[1]"),
        "tuple": ((value,), (other,), "[0]"),
        "dict": ({"logits": value}, {"logits": other}, '["logits"]'),
        "namedtuple": (Point(value), Point(other), ".value"),
        "dataclass": (Box(value), Box(other), ".value"),
        "return-type": (torch.return_types.max((value, value)), torch.return_types.max((other, value)), ".values"),
    }


def _row(diff: LeafDiff) -> tuple[str, int | None, str]:
    return equality.kind(diff), diff.differing, repr(diff.max_abs_diff)


@pytest.mark.parametrize(("case", "x", "y"), CASES, ids=[case for case, _, _ in CASES])
def test_each_dtype_placement_layout_and_container(case: str, x: torch.Tensor, y: torch.Tensor) -> None:
    for layout, (a, b, flat_x, flat_y) in layouts(x, y).items():
        verdict, count, largest = expected(flat_x, flat_y)
        for container, (wrapped, other, path) in containers(a, b).items():
            found = [diff for diff in equality.compare(wrapped, other) if diff.path == path]
            assert len(found) == 1, (layout, container)
            (diff,) = found
            want_largest = repr(largest) if verdict == "differ" else repr(diff.max_abs_diff)
            assert _row(diff) == (verdict, count, want_largest), (case, layout, container)
            same = equality.same(wrapped, other)
            assert same is (verdict != "differ"), (case, layout, container)
            if layout == "strided" and verdict == "differ" and x.numel() <= equality.MAX_MARKED:
                _, close = reference(x, y)
                assert diff.differs_at == tuple((~close).nonzero().reshape(-1).tolist())


@pytest.mark.parametrize(("case", "x", "y"), CASES, ids=[case for case, _, _ in CASES])
def test_numpy_arrays_and_python_numbers_follow_the_same_rule(case: str, x: torch.Tensor, y: torch.Tensor) -> None:
    if x.dtype == torch.bfloat16:
        pytest.skip("NumPy has no bfloat16")
    verdict, count, _ = expected(x, y)
    (diff,) = equality.compare(x.numpy(), y.numpy())
    assert (equality.kind(diff), diff.differing) == (verdict, count)
    if x.dtype in (torch.float64, torch.int64, torch.complex128):  # Python's own number types
        leaves = list(equality.compare(x.tolist(), y.tolist()))
        for index, leaf in enumerate(leaves):
            assert equality.kind(leaf) == expected(x[index:index + 1], y[index:index + 1])[0]


BIG = 2**100
PLAIN: list[tuple[str, Any, Any, str, str]] = [
    ("int-2**53", 2**53 + 1, 2**53, "differ", "1.0"),
    ("int-2**100", BIG + 1, BIG, "differ", "1.0"),
    ("int-huge-gap", 10**400, 0, "differ", "inf"),
    ("int-equal-huge", 10**400, 10**400, "equal", "0.0"),
    ("float-nan", NAN, NAN, "equal", "0.0"),
    ("float-rounding", 0.1 + 0.2, 0.3, "rounding", repr(abs(0.1 + 0.2 - 0.3))),
    ("float-nan-vs-number", NAN, 1.0, "differ", "nan"),
    ("bool-vs-int", True, 1, "differ", "None"),
    ("int-vs-float", 1, 1.0, "differ", "None"),
    ("complex", 1 + 2j, 1 + 2j, "equal", "0.0"),
    ("str", "a", "b", "differ", "None"),
    ("none", None, None, "equal", "None"),
    ("bytes", b"a", b"a", "equal", "None"),
]


@pytest.mark.parametrize(("case", "a", "b", "verdict", "largest"), PLAIN, ids=[p[0] for p in PLAIN])
def test_python_values(case: str, a: Any, b: Any, verdict: str, largest: str) -> None:
    (diff,) = equality.compare(a, b)
    assert (equality.kind(diff), repr(diff.max_abs_diff)) == (verdict, largest)


def _q(values: list[float], scale: float = 0.1, zero: int = 3) -> torch.Tensor:
    return torch.quantize_per_tensor(torch.tensor(values), scale, zero, torch.qint8)


def _qc(values: list[list[float]], scales: list[float]) -> torch.Tensor:
    return torch.quantize_per_channel(torch.tensor(values), torch.tensor(scales), torch.tensor([0, 0]), 0,
                                      torch.quint8)


LAYOUTS: list[tuple[str, Any, Any, str, str]] = [
    ("quantized-same", _q([0.1, 0.5]), _q([0.1, 0.5]), "equal", ""),
    ("quantized-values", _q([0.1, 0.5]), _q([0.1, 0.9]), "differ", ""),
    ("quantized-scale", _q([0.1, 0.5]), _q([0.1, 0.5], scale=0.2), "differ", "quantization scale differ"),
    ("quantized-zero-point", _q([0.1]), _q([0.1], zero=4), "differ", "quantization zero point differ"),
    ("per-channel-same", _qc([[1.0, 2.0], [3.0, 4.0]], [0.1, 0.2]), _qc([[1.0, 2.0], [3.0, 4.0]], [0.1, 0.2]),
     "equal", ""),
    ("per-channel-scales", _qc([[1.0, 2.0], [3.0, 4.0]], [0.1, 0.2]),
     _qc([[1.0, 2.0], [3.0, 4.0]], [0.1, 0.3]), "differ", "quantization scales differ"),
    ("meta", torch.empty(3, device="meta"), torch.empty(3, device="meta"), "incomparable",
     "not comparable: meta tensors hold no values"),
    ("meta-shapes", torch.empty(3, device="meta"), torch.empty(4, device="meta"), "differ", "shapes differ"),
    ("meta-vs-cpu", torch.empty(3, device="meta"), torch.zeros(3), "differ", "devices differ"),
    ("sparse-vs-dense", torch.eye(2).to_sparse(), torch.eye(2), "differ", "layouts differ"),
    ("sparse-uncoalesced", torch.sparse_coo_tensor([[0, 0]], [1.0, 2.0], (2,)),
     torch.sparse_coo_tensor([[0]], [3.0], (2,)), "equal", ""),
    ("nested-shapes", torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]),
     torch.nested.nested_tensor([torch.ones(3), torch.ones(2)]), "differ", "component 0 shapes differ"),
    ("nested-vs-strided", torch.nested.nested_tensor([torch.ones(2)]), torch.ones(1, 2), "differ",
     "one tensor is nested"),
    ("dtypes", torch.ones(2), torch.ones(2, dtype=torch.float64), "differ", "dtypes differ"),
    ("conj-bit", torch.tensor([1 + 2j]).conj(), torch.tensor([1 - 2j]), "equal", ""),
]


@pytest.mark.parametrize(("case", "a", "b", "verdict", "note"), LAYOUTS, ids=[p[0] for p in LAYOUTS])
def test_layouts_compared_losslessly_or_said_not_comparable(case: str, a: Any, b: Any, verdict: str,
                                                            note: str) -> None:
    (diff,) = equality.compare(a, b)
    assert equality.kind(diff) == verdict
    assert diff.note.startswith(note)
    if case == "quantized-values":  # the integers decide; the size is in real units
        assert diff.max_abs_diff == pytest.approx(float((a.dequantize() - b.dequantize()).abs().max()))


class NoEq:
    __slots__ = ()


class Plain:
    def __init__(self, value: Any) -> None:
        self.value = value


class Raises:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing me")

    __hash__ = object.__hash__


class Elementwise:
    def __eq__(self, other: object) -> Any:
        return np.array([True, False])

    __hash__ = object.__hash__


def test_containers_and_objects() -> None:
    big = torch.zeros(3000)
    other = big.clone()
    other[1500] = 1.0
    found = {d.path: d for d in equality.compare(Box(big), Box(other))}
    assert equality.kind(found[".value"]) == "differ" and found[".value"].differing == 1
    array = np.zeros(2000)
    changed = array.copy()
    changed[1000] = 1.0
    assert equality.same(array, changed) is False
    # a list and a dict: a type difference where they part, never a shared path
    (diff,) = equality.compare([1], {0: 1})
    assert (diff.path, diff.note) == ("output", "types differ: list vs dict")
    assert [d.path for d in equality.compare({"a": [1, 2]}, {"a": [1]})] == ['["a"][0]', '["a"][1]']
    assert equality.compare({"a": [1, 2]}, {"a": [1]}).__next__().equal
    # an object without __eq__ by its attributes; one with neither: not comparable
    assert equality.same(Plain(torch.ones(2)), Plain(torch.ones(2))) is True
    assert equality.same(Plain(1), Plain(2)) is False
    assert equality.same(NoEq(), NoEq()) is None
    (raised,) = equality.compare(Raises(), Raises())
    assert raised.note == "not comparable: RuntimeError: no comparing me"
    assert equality.same(Elementwise(), Elementwise()) is None
    # a named tuple of floats keeps its field names; a list of floats is compared as one batch
    assert [d.path for d in equality.compare(Point(1.0), Point(2.0))] == [".value"]
    found = list(equality.compare([1.0, NAN, INF, 0.1 + 0.2], [1.0, NAN, -INF, 0.3]))
    assert [(equality.kind(d), repr(d.max_abs_diff)) for d in found] == [
        ("equal", "0.0"), ("equal", "0.0"), ("differ", "inf"), ("rounding", repr(0.1 + 0.2 - 0.3))]
    # a torch return type, by field name
    values = torch.max(torch.tensor([[1.0, 2.0]]), 1)
    assert [d.path for d in equality.compare(values, values)] == [".values", ".indices"]
    assert equality.same(values, values) is True


def test_values_that_contain_themselves_end() -> None:
    a: list[Any] = [1]
    a.append(a)
    b: list[Any] = [1]
    b.append(b)
    found = {d.path: equality.kind(d) for d in equality.compare(a, b)}
    assert found["[0]"] == "equal"
    assert "incomparable" in found.values()
    node = Plain(None)
    node.value = node
    assert len(list(equality.leaves(node))) < 2 * equality.MAX_DEPTH


def test_largest_keeps_nan() -> None:
    assert math.isnan(equality.largest([0.0, NAN, 3.0]) or 0.0)
    assert math.isnan(equality.largest([NAN, 0.0]) or 0.0)
    assert equality.largest([None, 2.0]) == 2.0
    assert equality.largest([]) is None


def test_verdict_order() -> None:
    rows = [LeafDiff("a", equal=True), LeafDiff("b", equal=True, verdict="rounding")]
    assert equality.verdict(rows) == "rounding"
    assert equality.verdict([*rows, LeafDiff("c", equal=False, verdict="incomparable")]) == "incomparable"
    assert equality.verdict([*rows, LeafDiff("d", equal=False)]) == "differ"
    assert equality.verdict([]) == "equal"

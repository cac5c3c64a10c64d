"""compare: leaf-by-leaf differences, gradient tracking (mode detection: test_detect.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from sphinx_evaldemo.examples.compare import (
    MAX_LEAVES,
    comparison,
    diff_leaves,
    leaves,
    requires_grad,
    snapshot,
)


def test_leaves_name_each_path() -> None:
    value = {"logits": torch.zeros(1), "aux": (1, [2.0, "three"]), 0: "int key"}
    assert [path for path, _ in leaves(value)] == [
        '["logits"]', '["aux"][0]', '["aux"][1][0]', '["aux"][1][1]', "[key 0]",
    ]
    assert [path for path, _ in leaves(torch.ones(2))] == ["output"]
    assert [path for path, _ in leaves(7)] == ["output"]


def test_a_list_and_a_dict_never_share_a_path() -> None:
    assert {p for p, _ in leaves([5])}.isdisjoint(p for p, _ in leaves({0: 5}))
    assert {p for p, _ in leaves([5])}.isdisjoint(p for p, _ in leaves({"0": 5}))


#: (path, equal, verdict, largest, differing, total, note) of each leaf
Row = tuple[str, bool, str, float | None, int | None, int | None, str]
NAN = float("nan")

DIFFS: list[tuple[str, Any, Any, tuple[Row, ...]]] = [
    ("equal-tensors", torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]),
     (("output", True, "", 0.0, 0, 2, ""),)),
    ("differing-tensors", torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.5, 0.0]),
     (("output", False, "", 3.0, 2, 3, ""),)),
    ("nan-in-both-is-equal", torch.tensor([NAN, 1.0]), torch.tensor([NAN, 1.0]),
     (("output", True, "", 0.0, 0, 2, ""),)),
    ("nan-in-one", torch.tensor([NAN, 1.0]), torch.tensor([0.0, 1.0]),
     (("output", False, "", NAN, 1, 2, ""),)),
    ("shapes-differ", torch.zeros(2, 3), torch.zeros(3, 2),
     (("output", False, "", None, None, None, "shapes differ: (2, 3) vs (3, 2)"),)),
    ("integer-tensors", torch.tensor([1, 5]), torch.tensor([1, 2]),
     (("output", False, "", 3.0, 1, 2, ""),)),
    ("complex-tensors", torch.tensor([1 + 1j, 2 + 0j]), torch.tensor([1 + 1j, 2 + 3j]),
     (("output", False, "", 3.0, 1, 2, ""),)),
    ("tuple", (torch.ones(2), torch.tensor([0.0, 2.0])), (torch.ones(2), torch.ones(2)),
     (("[0]", True, "", 0.0, 0, 2, ""), ("[1]", False, "", 1.0, 2, 2, ""))),
    ("dict",
     {"logits": torch.tensor([0.0, 4.0]), "hidden": torch.ones(1)},
     {"logits": torch.tensor([1.0, 2.0]), "hidden": torch.ones(1)},
     (('["logits"]', False, "", 2.0, 2, 2, ""), ('["hidden"]', True, "", 0.0, 0, 1, ""))),
    ("key-in-one-mode-only", {"a": 1, "b": 2}, {"a": 1, "c": 3},
     (('["a"]', True, "", 0.0, 0, 1, ""),
      ('["b"]', False, "", None, None, None, "present in one output only"),
      ('["c"]', False, "", None, None, None, "present in one output only"))),
    ("python-ints", 20, 11, (("output", False, "", 9.0, 1, 1, ""),)),
    ("python-nan", NAN, NAN, (("output", True, "", 0.0, 0, 1, ""),)),
    ("equal-strings", "a", "a", (("output", True, "", None, None, None, ""),)),
    ("arrays", np.array([1, 2]), np.array([1, 3]), (("output", False, "", 1.0, 1, 2, ""),)),
    ("list-vs-dict", [1], {0: 1},
     (("output", False, "", None, None, None, "types differ: list vs dict"),)),
    ("rounding", torch.tensor([1.0]), torch.tensor([1.0]).nextafter(torch.tensor([2.0])),
     (("output", True, "rounding", 2.0 ** -23, 0, 1, ""),)),
]


@pytest.mark.parametrize(("case", "a", "b", "expected"), DIFFS, ids=[d[0] for d in DIFFS])
def test_diff_leaves(case: str, a: Any, b: Any, expected: tuple[Row, ...]) -> None:
    found = [(d.path, d.equal, d.verdict, d.max_abs_diff, d.differing, d.total, d.note)
             for d in diff_leaves(a, b)]
    # NaN never equals itself: compare it by its repr
    assert [tuple(map(repr, row)) for row in found] == [tuple(map(repr, row)) for row in expected]


def test_a_comparison_of_many_leaves_keeps_the_first_ones_and_counts() -> None:
    a = [float(i) for i in range(20000)]
    b = [*a[:-3], 0.0, 0.0, 0.0]
    found = comparison(("train", "eval"), a, b)
    assert len(found.leaves) == MAX_LEAVES
    assert (found.more, found.more_differing, found.differ) == (20000 - MAX_LEAVES, 3, True)


def test_diff_of_a_real_dropout_pair() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))
    x = torch.randn(4, 8)
    train = net.train()(x)
    ev = net.eval()(x)
    (leaf,) = diff_leaves(train, ev)
    differs = train != ev
    assert leaf.differing == int(differs.sum())
    assert leaf.total == 32
    assert leaf.max_abs_diff == pytest.approx(float((train - ev).detach().abs().max()))
    assert not leaf.equal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (torch.ones(2, requires_grad=True) * 2, True),
        (torch.ones(2), False),
        ((torch.ones(1), torch.ones(1, requires_grad=True) + 1), True),
        ({"a": torch.ones(1), "b": [torch.zeros(1)]}, False),
        (3, None),
        ({"text": "no tensors"}, None),
    ],
)
def test_requires_grad(value: Any, expected: bool | None) -> None:
    assert requires_grad(value) is expected


def test_requires_grad_of_a_real_model() -> None:
    net = nn.Linear(2, 2)
    x = torch.ones(1, 2)
    assert requires_grad(net.eval()(x)) is True
    with torch.no_grad():
        assert requires_grad(net.eval()(x)) is False


def test_snapshot_copies_tensors_arrays_and_fields_once() -> None:
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Out:
        hidden: torch.Tensor
        array: Any

    out = Out(torch.zeros(3), np.zeros(2))
    kept = snapshot(out)
    out.hidden.add_(1)
    np.add(out.array, 1, out=out.array)
    assert type(kept) is Out and float(kept.hidden.sum()) == 0.0 and float(kept.array.sum()) == 0.0
    looped: list[Any] = [torch.ones(1)]
    looped.append(looped)
    copied = snapshot(looped)
    assert copied[1] is copied and copied[0] is not looped[0]
    values = torch.max(torch.tensor([[1.0, 3.0]]), 1)
    assert type(snapshot(values)) is type(values)

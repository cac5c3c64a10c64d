"""compare: leaf-by-leaf differences, gradient tracking (mode detection: test_detect.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from sphinx_evaldemo.examples.compare import diff_leaves, leaves, requires_grad
from sphinx_evaldemo.examples.model import LeafDiff


def test_leaves_name_each_path() -> None:
    value = {"logits": torch.zeros(1), "aux": (1, [2.0, "three"])}
    assert [path for path, _ in leaves(value)] == [
        "['logits']", "['aux'][0]", "['aux'][1][0]", "['aux'][1][1]",
    ]
    assert [path for path, _ in leaves(torch.ones(2))] == ["output"]
    assert [path for path, _ in leaves(7)] == ["output"]


DIFFS: list[tuple[str, Any, Any, tuple[LeafDiff, ...]]] = [
    (
        "equal-tensors",
        torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]),
        (LeafDiff("output", equal=True, max_abs_diff=0.0, differing=0, total=2),),
    ),
    (
        "differing-tensors",
        torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.5, 0.0]),
        (LeafDiff("output", equal=False, max_abs_diff=3.0, differing=2, total=3),),
    ),
    (
        "nan-in-both-is-equal",
        torch.tensor([float("nan"), 1.0]), torch.tensor([float("nan"), 1.0]),
        (LeafDiff("output", equal=True, max_abs_diff=0.0, differing=0, total=2),),
    ),
    (
        "nan-in-one",
        torch.tensor([float("nan"), 1.0]), torch.tensor([0.0, 1.0]),
        (LeafDiff("output", equal=False, max_abs_diff=float("nan"), differing=1, total=2),),
    ),
    (
        "shapes-differ",
        torch.zeros(2, 3), torch.zeros(3, 2),
        (LeafDiff("output", equal=False, note="shapes differ: (2, 3) vs (3, 2)"),),
    ),
    (
        "integer-tensors",
        torch.tensor([1, 5]), torch.tensor([1, 2]),
        (LeafDiff("output", equal=False, max_abs_diff=3.0, differing=1, total=2),),
    ),
    (
        "complex-tensors",
        torch.tensor([1 + 1j, 2 + 0j]), torch.tensor([1 + 1j, 2 + 3j]),
        (LeafDiff("output", equal=False, max_abs_diff=3.0, differing=1, total=2),),
    ),
    (
        "tuple",
        (torch.ones(2), torch.tensor([0.0, 2.0])), (torch.ones(2), torch.ones(2)),
        (
            LeafDiff("[0]", equal=True, max_abs_diff=0.0, differing=0, total=2),
            LeafDiff("[1]", equal=False, max_abs_diff=1.0, differing=2, total=2),
        ),
    ),
    (
        "dict",
        {"logits": torch.tensor([0.0, 4.0]), "hidden": torch.ones(1)},
        {"logits": torch.tensor([1.0, 2.0]), "hidden": torch.ones(1)},
        (
            LeafDiff("['logits']", equal=False, max_abs_diff=2.0, differing=2, total=2),
            LeafDiff("['hidden']", equal=True, max_abs_diff=0.0, differing=0, total=1),
        ),
    ),
    (
        "key-in-one-mode-only",
        {"a": 1, "b": 2}, {"a": 1, "c": 3},
        (
            LeafDiff("['a']", equal=True),
            LeafDiff("['b']", equal=False, note="present in one mode only"),
            LeafDiff("['c']", equal=False, note="present in one mode only"),
        ),
    ),
    ("python-ints", 20, 11, (LeafDiff("output", equal=False),)),
    ("equal-strings", "a", "a", (LeafDiff("output", equal=True),)),
    (
        "arrays-refusing-bool",
        np.array([1, 2]), np.array([1, 3]),
        (LeafDiff("output", equal=False),),
    ),
]


@pytest.mark.parametrize(("case", "a", "b", "expected"), DIFFS, ids=[d[0] for d in DIFFS])
def test_diff_leaves(case: str, a: Any, b: Any, expected: tuple[LeafDiff, ...]) -> None:
    found = diff_leaves(a, b)
    if case == "nan-in-one":
        # NaN never equals itself: compare everything but the largest difference
        (leaf,) = found
        assert (leaf.equal, leaf.differing, leaf.total) == (False, 1, 2)
        return
    assert found == expected


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

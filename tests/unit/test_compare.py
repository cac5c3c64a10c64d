"""compare: mode-dependent submodules, leaf-by-leaf differences, gradient tracking."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812  # the usual alias
from torch import nn

from sphinx_evaldemo.examples.compare import (
    describe,
    diff_leaves,
    leaves,
    mode_dependent,
    requires_grad,
)
from sphinx_evaldemo.examples.model import LeafDiff


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.dropout = nn.Dropout(0.1)


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 4)
        self.block = Block()


class ReadsTraining(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if self.training else x


class FunctionalDropout(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, 0.5, self.training)


class ReadsTrainingInHelper(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def scale(value: torch.Tensor) -> torch.Tensor:
            return value * (2 if self.training else 1)

        return scale(x)


class OverridesTrain(nn.Module):
    def train(self, mode: bool = True) -> OverridesTrain:
        super().train(mode)
        return self


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class MyDropout(nn.Dropout):
    pass


def _entry(model: nn.Module, entry: str) -> str:
    """``"1"`` stands for ``"1: BatchNorm1d(<its extra_repr>)"``; full entries are kept."""
    if ":" in entry:
        return entry
    module = dict(model.named_modules())[entry]
    return f"{entry}: {type(module).__name__}({module.extra_repr()})"


MODE_DEPENDENT: list[tuple[str, nn.Module, list[str]]] = [
    ("linear-relu-dropout", nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.5)), ["2: Dropout(p=0.5)"]),
    ("batchnorm", nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), ["1"]),
    ("batchnorm2d", nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), ["1"]),
    ("lazy-batchnorm", nn.Sequential(nn.LazyBatchNorm1d()), ["0"]),
    ("sync-batchnorm", nn.Sequential(nn.SyncBatchNorm(3)), ["0"]),
    ("nested", nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))), ["0.1: Dropout(p=0.5)"]),
    ("attribute", Outer(), ["block.dropout: Dropout(p=0.1)"]),
    (
        "dropout-family",
        nn.Sequential(nn.Dropout2d(), nn.AlphaDropout(0.2), nn.FeatureAlphaDropout()),
        ["0: Dropout2d(p=0.5)", "1: AlphaDropout(p=0.2)", "2: FeatureAlphaDropout(p=0.5)"],
    ),
    ("subclass-of-dropout", nn.Sequential(MyDropout(0.3)), ["0: MyDropout(p=0.3)"]),
    ("instancenorm-tracking", nn.Sequential(nn.InstanceNorm1d(3, track_running_stats=True)), ["0"]),
    ("instancenorm-plain", nn.Sequential(nn.InstanceNorm1d(3)), []),
    ("lstm-dropout", nn.Sequential(nn.LSTM(2, 3, num_layers=2, dropout=0.2)), ["0"]),
    ("lstm-no-dropout", nn.Sequential(nn.LSTM(2, 3, num_layers=2)), []),
    ("gru-dropout", nn.Sequential(nn.GRU(2, 3, num_layers=2, dropout=0.1)), ["0"]),
    ("attention-dropout", nn.Sequential(nn.MultiheadAttention(4, 2, dropout=0.1)), ["0"]),
    ("attention-no-dropout", nn.Sequential(nn.MultiheadAttention(4, 2)), []),
    ("norms-without-mode", nn.Sequential(nn.LayerNorm(3), nn.GroupNorm(1, 3), nn.ReLU()), []),
    ("reads-training", nn.Sequential(nn.Linear(2, 2), ReadsTraining()), ["1"]),
    ("functional-dropout", nn.Sequential(FunctionalDropout()), ["0"]),
    ("training-in-nested-function", nn.Sequential(ReadsTrainingInHelper()), ["0"]),
    ("overrides-train", nn.Sequential(OverridesTrain()), ["0"]),
    ("plain-user-module", nn.Sequential(Plain()), []),
]


@pytest.mark.parametrize(("case", "model", "names"), MODE_DEPENDENT, ids=[c[0] for c in MODE_DEPENDENT])
def test_mode_dependent_submodules(case: str, model: nn.Module, names: list[str]) -> None:
    assert mode_dependent(model, "net") == tuple(_entry(model, name) for name in names)


def test_model_itself_is_named_by_its_variable() -> None:
    assert mode_dependent(nn.Dropout(0.2), "drop") == ("drop: Dropout(p=0.2)",)
    assert mode_dependent(ReadsTraining(), "scaler") == ("scaler: ReadsTraining()",)


@pytest.mark.parametrize(
    ("module", "text"),
    [
        (nn.Dropout(0.5), "Dropout(p=0.5)"),
        (nn.Dropout(0.25, inplace=True), "Dropout(p=0.25, inplace=True)"),
        (nn.Sequential(nn.Linear(2, 2)), "Sequential()"),
        (nn.Linear(2, 3), "Linear(in_features=2, out_features=3, bias=True)"),
    ],
)
def test_describe_shows_type_and_own_settings(module: nn.Module, text: str) -> None:
    assert describe(module) == text


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

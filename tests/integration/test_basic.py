"""The basic root: what the page shows equals the same model run directly in the test."""

from __future__ import annotations

import copy

import pytest
import torch
from sphinx.testing.util import SphinxTestApp
from torch import nn

from tests.helpers import flat, outputs, seed_all, titles, warnings


@pytest.fixture(scope="module")
def direct() -> dict[str, torch.Tensor]:
    """The basic root's example, run here: seed, setup, input once, reseed before each mode."""
    seed_all(0)
    net = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5))
    x = torch.randn(3, 4)
    state = copy.deepcopy(net.state_dict())
    results = {}
    for mode in ("train", "eval"):
        net.load_state_dict(state)
        net.train(mode == "train")
        seed_all(0)
        results[mode] = net(x)
    return results


@pytest.fixture(scope="module")
def page(basic_text: SphinxTestApp) -> str:
    return (basic_text.outdir / "index.txt").read_text(encoding="utf-8")


def test_eval_panel_equals_the_model_called_directly(page: str) -> None:
    seed_all(0)
    net = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5))
    x = torch.randn(3, 4)
    seed_all(0)
    expected = net.eval()(x)

    assert outputs(page, "model.eval()") == [repr(expected)]


def test_train_panel_equals_the_model_called_directly(
    page: str, direct: dict[str, torch.Tensor]
) -> None:
    assert outputs(page, "model.train()") == [repr(direct["train"])]
    # dropout really acted: the train output is not the eval output
    assert not torch.equal(direct["train"], direct["eval"])


def test_panels_in_default_order(page: str) -> None:
    assert titles(page) == ["model.train()", "model.eval()"]


def test_comparison_facts_are_the_measured_ones(page: str, direct: dict[str, torch.Tensor]) -> None:
    train, ev = direct["train"].detach().double(), direct["eval"].detach().double()
    differs = train != ev
    largest = float((train - ev).abs()[differs].max())
    count, total = int(differs.sum()), train.numel()
    text = flat(page)
    values = f"all {total} values" if count == total else f"{count} of {total} values"
    assert f"The train and eval outputs differ in {values} (largest difference {largest:.4g})." in text
    assert 'Train and eval first differ at "net[1]".' in text
    assert '"net[1]" (Dropout, p=0.5) zeroed' in text
    # the compact figure leaves out what carries no information for this model
    assert "requires_grad" not in text and "Buffers" not in text


def test_build_is_clean_and_reports_the_run(basic_text: SphinxTestApp) -> None:
    assert warnings(basic_text.warning.getvalue()) == []
    assert basic_text.statuscode == 0
    status = basic_text.status.getvalue()
    assert "evaldemo: 1 example ran, 0 came from the cache, 0 failed" in status

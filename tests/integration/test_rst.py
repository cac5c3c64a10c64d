"""The directive in a reStructuredText page: same options, same panels, same warnings."""

from __future__ import annotations

import copy

import pytest
import torch
from sphinx.testing.util import SphinxTestApp
from torch import nn

from sphinx_evaldemo.examples import options
from tests.conftest import ROOTS, Build
from tests.helpers import flat, line_of, outputs, panel, sections, seed_all, titles, warnings

SOURCE = (ROOTS / "test-rst" / "index.rst").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def app_rst(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("rst", "text")


@pytest.fixture(scope="module")
def page(app_rst: SphinxTestApp) -> dict[str, str]:
    return sections((app_rst.outdir / "index.txt").read_text(encoding="utf-8"))


def test_compared_panels_with_options(page: dict[str, str]) -> None:
    seed_all(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    x = torch.randn(2, 4)
    state = copy.deepcopy(net.state_dict())
    expected = {}
    for mode in ("eval", "train"):
        net.load_state_dict(state)
        net.train(mode == "train")
        seed_all(0)
        expected[mode] = [repr(net(x)), repr(net(x))]

    section = page["Compared"]
    assert "Dropout, written in rST" in section
    assert titles(section) == ["model.eval()", "model.train()"]
    for mode in ("eval", "train"):
        assert outputs(section, f"model.{mode}()") == expected[mode]
        labels = [item[1] for item in panel(section, f"model.{mode}()") if isinstance(item, tuple)]
        assert [label for label in labels if label.startswith("pass ")] == ["pass 1", "pass 2"]
    text = flat(section)
    assert '"net[1]" (Dropout, p=0.5) zeroed' in text
    assert "The eval and train outputs " in text
    assert 'Train and eval first differ at "net[1]".' in text
    assert "The example above is Dropout, written in rST." in text


def test_as_written_segments(page: dict[str, str]) -> None:
    section = page["As written"]
    assert titles(section) == ["train mode (the default)", "eval mode"]
    assert outputs(section, "train mode (the default)") == ["before"]
    assert outputs(section, "eval mode") == ["after"]


def test_warnings_at_rst_lines(app_rst: SphinxTestApp, page: dict[str, str]) -> None:
    with pytest.raises(options.OptionError) as bad:
        options.parse({"repeat": "zero"})
    found = sorted(warnings(app_rst.warning.getvalue()), key=lambda w: w.line or 0)
    assert [(w.file, w.line, w.type) for w in found] == [
        ("index.rst", line_of(SOURCE, ".. evaldemo::", after="Broken option"), "evaldemo.option"),
        ("index.rst", line_of(SOURCE, 'raise ValueError("raised in rst")'), "evaldemo.exception"),
    ]
    # the same message as in MyST: the extension checks options itself
    assert found[0].message == str(bad.value)
    assert "ValueError: raised in rst" in found[1].message
    assert "This example was not run" in flat(page["Broken option"])
    assert 'File "<example>", line 3' in page["Raising"]

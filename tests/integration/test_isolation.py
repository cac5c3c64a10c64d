"""Examples run one after another in the same worker do not see each other's state.

The first example changes what it can (default dtype, grad mode, threads, a module of
the docs folder, ``sys.path``) and draws from the RNGs; the second, run next in the
same process (``evaldemo_workers = 1``), must find everything as a fresh worker has it.
"""

from __future__ import annotations

import pytest
from sphinx.testing.util import SphinxTestApp

from tests.conftest import Build
from tests.helpers import outputs, sections, warnings


def _printed(section: str) -> dict[str, str]:
    """``{first word: rest}`` of each line the example printed."""
    (block,) = outputs(section, "output")
    return dict(line.split(" ", 1) for line in block.splitlines())


@pytest.fixture(scope="module")
def app(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("isolation", "text")


@pytest.fixture(scope="module")
def printed(app: SphinxTestApp) -> dict[str, dict[str, str]]:
    page = sections((app.outdir / "index.txt").read_text(encoding="utf-8"))
    return {name: _printed(page[name]) for name in ("changes", "sees")}


def test_build_is_clean(app: SphinxTestApp) -> None:
    assert warnings(app.warning.getvalue()) == []
    assert "evaldemo: 2 examples ran, 0 came from the cache, 0 failed, 1 worker started" in (
        app.status.getvalue()
    )


def test_both_examples_ran_in_the_same_process(printed: dict[str, dict[str, str]]) -> None:
    assert printed["changes"]["pid"] == printed["sees"]["pid"]


def test_first_example_did_change_the_process(printed: dict[str, dict[str, str]]) -> None:
    """Without this the next test proves nothing."""
    changes = printed["changes"]
    assert changes["state"] == "torch.float64 False 4"
    assert changes["helper"] == "changed ['original', 'changed']"
    assert changes["path"] == "True"


def test_next_example_sees_a_fresh_process(printed: dict[str, dict[str, str]]) -> None:
    sees = printed["sees"]
    assert sees["state"] == "torch.float32 True 1"
    assert sees["helper"] == "original ['original']"
    assert sees["path"] == "False"


def test_rngs_are_reseeded_for_each_example(printed: dict[str, dict[str, str]]) -> None:
    import random

    import numpy as np
    import torch

    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    expected = f"{torch.rand(2).tolist()} {random.random()} {float(np.random.rand())}"
    assert printed["changes"]["rng"] == expected
    assert printed["sees"]["rng"] == expected

"""Bad ``evaldemo_*`` values in conf.py: one warning each, and the defaults are used."""

from __future__ import annotations

import pytest
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.config import EvalDemoConfig
from sphinx_evaldemo.examples import wiring
from tests.conftest import Build
from tests.helpers import warnings


@pytest.mark.sphinx("text", testroot="config")
def test_bad_config_values_warn_and_fall_back(app: SphinxTestApp) -> None:
    found = warnings(app.warning.getvalue())
    assert [w.type for w in found] == ["evaldemo.config"] * 5
    messages = [w.message for w in found]
    for name, value in [
        ("execute", "'sometimes'"), ("timeout", "0"), ("seed", "-1"), ("max_output", "50"),
        ("workers", "0"),
    ]:
        assert any(m.startswith(f"evaldemo_{name} = {value} is not valid: expected") for m in messages)
    assert wiring.runner(app).settings == EvalDemoConfig()


@pytest.mark.parametrize(
    ("name", "value", "rereads"),
    [
        ("evaldemo_workers", 2, False),  # how examples run, not what they produce
        ("evaldemo_dask_unreachable", "error", False),
        ("evaldemo_timeout", 30, True),  # part of each request: the results may change
    ],
)
def test_a_changed_value_rereads_the_pages_only_if_it_changes_them(
    sphinx_build: Build, name: str, value: object, rereads: bool
) -> None:
    copy = f"rebuild-{name}"
    sphinx_build("basic", copy=copy)
    again = sphinx_build("basic", copy=copy, confoverrides={name: value})
    assert wiring.runner(again).reading == ({"index"} if rereads else set())
    assert wiring.runner(again).ran == int(rereads)  # the timeout is part of the result's key

"""EvalDemoConfig.from_sphinx: good values kept, bad ones replaced by the default with a message."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sphinx.config import Config

from sphinx_evaldemo.config import EvalDemoConfig

DEFAULTS = EvalDemoConfig()


def _config(**values: Any) -> Config:
    """A real Sphinx Config holding ``evaldemo_*`` values as conf.py would set them."""
    config = Config({f"evaldemo_{name}": value for name, value in values.items()})
    for spec in dataclasses.fields(EvalDemoConfig):
        config.add(f"evaldemo_{spec.name}", spec.default, "env", ())
    return config


def test_defaults() -> None:
    settings, problems = EvalDemoConfig.from_sphinx(_config())
    assert problems == []
    assert settings == DEFAULTS
    assert (settings.execute, settings.timeout, settings.seed, settings.max_output) == (
        "auto", 60, 0, 20000,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("execute", "force"),
        ("execute", "cache"),
        ("execute", "never"),
        ("timeout", 0.5),
        ("timeout", 300),
        ("seed", 12345),
        ("max_output", 100),
        ("workers", 1),
        ("workers", None),
        ("cache_dir", "../.evaldemo-cache"),
        ("cache_dir", None),
        ("cache_dir", "s3://bucket/docs-cache"),
        ("cache_storage_options", {"endpoint_url": "http://127.0.0.1:9000", "anon": False}),
        ("cache_namespace", "team.docs-v2"),
        ("executor", "dask"),
        ("dask_scheduler", "tcp://10.0.0.5:8786"),
        ("dask_scheduler", "local"),
        ("dask_unreachable", "error"),
        ("report_files", ("json", "junit")),
        ("report_files", ["junit"]),
        ("report_files", ()),
    ],
)
def test_good_values_are_kept(name: str, value: Any) -> None:
    settings, problems = EvalDemoConfig.from_sphinx(_config(**{name: value}))
    assert problems == []
    assert getattr(settings, name) == value


@pytest.mark.parametrize(("name", "text", "value"), [
    ("workers", "2", 2), ("workers", " 3 ", 3),
])
def test_command_line_numbers_for_settings_without_a_default(name: str, text: str, value: int) -> None:
    """``-D evaldemo_workers=2`` reaches us as the string "2" (Sphinx converts by the default's type)."""
    settings, problems = EvalDemoConfig.from_sphinx(_config(**{name: text}))
    assert problems == []
    assert getattr(settings, name) == value


BAD = [
    ("workers", "two"),
    ("execute", "sometimes"),
    ("execute", "AUTO"),
    ("execute", None),
    ("timeout", 0),
    ("timeout", -1),
    ("timeout", "60"),
    ("timeout", True),
    ("seed", -1),
    ("seed", 1.5),
    ("seed", True),
    ("seed", "0"),
    ("max_output", 99),
    ("max_output", 100.0),
    ("workers", 0),
    ("workers", -2),
    ("workers", 1.5),
    ("workers", True),
    ("cache_dir", 5),
    ("cache_storage_options", "endpoint_url=http://x"),
    ("cache_storage_options", {1: "x"}),
    ("cache_namespace", "../escape"),
    ("cache_namespace", "a/b"),
    ("cache_namespace", ""),
    ("executor", "ray"),
    ("executor", None),
    ("dask_scheduler", ""),
    ("dask_scheduler", 8786),
    ("dask_unreachable", "ignore"),
    ("report_files", "json"),  # a string is not a tuple of one
    ("report_files", ("json", "xml")),
    ("report_files", None),
]


@pytest.mark.parametrize(("name", "value"), BAD, ids=repr)
def test_bad_value_falls_back_with_a_message(name: str, value: Any) -> None:
    settings, problems = EvalDemoConfig.from_sphinx(_config(**{name: value}))
    (problem,) = problems
    default = getattr(DEFAULTS, name)
    assert problem.startswith(f"evaldemo_{name} = {value!r} is not valid: expected ")
    assert problem.endswith(f"; using {default!r}")
    assert getattr(settings, name) == default


def test_each_bad_value_gives_its_own_message() -> None:
    settings, problems = EvalDemoConfig.from_sphinx(
        _config(execute="sometimes", timeout=0, seed=-1, max_output=10, workers=0)
    )
    assert [p.split(" =")[0] for p in problems] == [
        "evaldemo_execute", "evaldemo_timeout", "evaldemo_seed", "evaldemo_max_output",
        "evaldemo_workers",
    ]
    assert settings == DEFAULTS


def test_cache_dir_accepts_a_path_object() -> None:
    """conf.py often builds paths with pathlib; the message itself says 'a path'."""
    folder = Path("/tmp") / "evaldemo-cache"
    settings, problems = EvalDemoConfig.from_sphinx(_config(cache_dir=folder))
    assert problems == []
    assert Path(settings.cache_dir or "") == folder


@pytest.mark.parametrize(
    ("configured", "environment", "used"),
    [
        (None, None, "local"),
        (None, "tcp://from-env:8786", "tcp://from-env:8786"),
        ("tcp://conf:8786", "tcp://from-env:8786", "tcp://conf:8786"),
        (None, "  ", "local"),
    ],
)
def test_scheduler_from_conf_then_environment_then_local(
    monkeypatch: pytest.MonkeyPatch, configured: str | None, environment: str | None, used: str,
) -> None:
    if environment is None:
        monkeypatch.delenv("EVALDEMO_DASK_SCHEDULER", raising=False)
    else:
        monkeypatch.setenv("EVALDEMO_DASK_SCHEDULER", environment)
    settings, problems = EvalDemoConfig.from_sphinx(_config(dask_scheduler=configured))
    assert problems == []
    assert settings.scheduler() == used

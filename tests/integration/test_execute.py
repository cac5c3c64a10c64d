"""``evaldemo_execute`` and the result cache, over a sequence of builds of one copy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples.executors import local
from sphinx_evaldemo.examples.executors.local import LocalExecutor as Pool
from tests.conftest import ROOTS, Build
from tests.helpers import line_of, outputs, titles, warnings


class CountingPool(Pool):
    """The real pool, counting the worker processes it starts."""

    instances: list[CountingPool] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        CountingPool.instances.append(self)


@dataclass(frozen=True)
class Built:
    app: SphinxTestApp
    page: str
    workers: int

    @property
    def summary(self) -> str:
        found = re.search(r"evaldemo: \d+ examples? ran, \d+ came from the cache, \d+ failed", self.status)
        return found.group(0) if found else ""

    @property
    def status(self) -> str:
        return self.app.status.getvalue()


@pytest.fixture(scope="module")
def build(sphinx_build: Build) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "LocalExecutor", CountingPool)

        def run(copy: str, **kwargs: Any) -> Built:
            CountingPool.instances.clear()
            app = sphinx_build("execute", "text", copy=copy, **kwargs)
            page = (app.outdir / "index.txt").read_text(encoding="utf-8")
            return Built(app, page, sum(pool.started for pool in CountingPool.instances))

        yield run


@pytest.fixture(scope="module")
def steps(build: Any) -> dict[str, Built]:
    """One copy, built again and again; each step is named after what it checks."""
    done = {"first": build("execute")}
    source = Path(done["first"].app.srcdir) / "index.md"
    source.write_text(
        source.read_text(encoding="utf-8").replace("Prose that the tests edit.", "Edited prose."),
        encoding="utf-8",
    )
    done["prose-edit"] = build("execute")
    done["auto-fresh"] = build("execute", freshenv=True)
    done["force"] = build("execute", freshenv=True, confoverrides={"evaldemo_execute": "force"})
    done["cache"] = build("execute", freshenv=True, confoverrides={"evaldemo_execute": "cache"})
    done["never"] = build("execute", freshenv=True, confoverrides={"evaldemo_execute": "never"})
    done["cache-miss"] = build("execute-empty", confoverrides={"evaldemo_execute": "cache"})
    return done


def test_first_build_runs_the_example(steps: dict[str, Built]) -> None:
    first = steps["first"]
    assert first.summary == "evaldemo: 1 example ran, 0 came from the cache, 0 failed"
    assert first.workers == 1
    assert titles(first.page) == ["model.train()", "model.eval()"]


@pytest.mark.parametrize("step", ["prose-edit", "auto-fresh", "cache"])
def test_stored_result_is_reused_without_a_worker(steps: dict[str, Built], step: str) -> None:
    built = steps[step]
    assert built.summary == "evaldemo: 0 examples ran, 1 came from the cache, 0 failed"
    assert built.workers == 0
    assert outputs(built.page, "model.eval()") == outputs(steps["first"].page, "model.eval()")
    assert outputs(built.page, "model.train()") == outputs(steps["first"].page, "model.train()")


def test_force_runs_again_and_gives_the_same_outputs(steps: dict[str, Built]) -> None:
    forced = steps["force"]
    assert forced.summary == "evaldemo: 1 example ran, 0 came from the cache, 0 failed"
    assert forced.workers == 1
    first = steps["first"].page
    assert outputs(forced.page, "model.train()") == outputs(first, "model.train()")
    assert outputs(forced.page, "model.eval()") == outputs(first, "model.eval()")


def test_never_shows_code_only_and_starts_no_worker(steps: dict[str, Built]) -> None:
    never = steps["never"]
    assert never.workers == 0
    assert "examples ran" not in never.status
    assert "net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5))" in never.page
    assert titles(never.page) == []
    assert "outputs differ" not in never.page
    assert "tensor(" not in never.page
    assert warnings(never.app.warning.getvalue()) == []


def test_cache_mode_miss_is_a_warning(steps: dict[str, Built]) -> None:
    missed = steps["cache-miss"]
    assert missed.workers == 0
    (warning,) = warnings(missed.app.warning.getvalue())
    assert warning.file == "index.md"
    source = (ROOTS / "test-execute" / "index.md").read_text(encoding="utf-8")
    assert warning.line == line_of(source, "```{evaldemo}")
    assert warning.type == "evaldemo.not-run"
    assert "no stored result" in warning.message
    assert "tensor(" not in missed.page


def test_cache_dir_survives_a_clean_build(sphinx_build: Build, tmp_path: Path, build: Any) -> None:
    """With ``evaldemo_cache_dir``, a new checkout with a new doctree folder runs nothing."""
    overrides = {"evaldemo_cache_dir": str(tmp_path / "kept")}
    first = build("execute-kept-1", confoverrides=overrides)
    second = build("execute-kept-2", confoverrides=overrides)
    assert first.workers == 1
    assert second.workers == 0
    assert second.summary == "evaldemo: 0 examples ran, 1 came from the cache, 0 failed"
    assert second.page.split("Execution modes", 1)[1] == first.page.split("Execution modes", 1)[1]

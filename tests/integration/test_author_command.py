"""``python -m sphinx_evaldemo run PAGE``: one page's examples, as a build runs and shows them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples.author import UsageError, choose, leave_out, run_page
from tests.conftest import ROOTS, Build
from tests.helpers import panel

ROOT = ROOTS / "test-author"
REPO = Path(__file__).resolve().parents[2]


def command(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "sphinx_evaldemo", "run", *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False,
    )


PAGE = """# Page

```{evaldemo}
:input: torch.randn(2)

net = torch.nn.Identity()
```

.. evaldemo::

text
"""


@pytest.mark.parametrize(("line", "opening"), [(3, 3), (4, 3), (8, 3), (9, 9), (12, 9)])
def test_line_picks_the_last_example_opening_at_or_before_it(line: int, opening: int) -> None:
    assert choose(PAGE, line, Path("page.md")) == opening


def test_line_before_every_example() -> None:
    with pytest.raises(UsageError, match="examples open at lines: 3, 9"):
        choose(PAGE, 2, Path("page.md"))


@pytest.mark.parametrize(("keep", "left"), [(3, ["{evaldemo}", ".. evaldemo-skipped::"]),
                                            (9, ["{evaldemo-skipped}", ".. evaldemo::"])])
def test_leave_out_keeps_lines_and_one_example(keep: int, left: list[str]) -> None:
    changed = leave_out(PAGE, keep)
    assert len(changed.splitlines()) == len(PAGE.splitlines())
    lines = changed.splitlines()
    assert [lines[2].removeprefix("```"), lines[8]] == left


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the root: the command must not write into the project."""
    where = tmp_path_factory.mktemp("author") / "project"
    shutil.copytree(ROOT, where)
    return where


@pytest.fixture(scope="module")
def built(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("author", "text")


@pytest.fixture(scope="module")
def good(project: Path) -> subprocess.CompletedProcess[str]:
    return command(project / "index.md")


def test_good_page_exits_0_and_leaves_the_project_alone(project: Path, good: subprocess.CompletedProcess[str]) -> None:
    assert good.returncode == 0, good.stdout + good.stderr
    assert "2 examples, 0 failed" in good.stdout
    assert "index.md:11 (Dropout in both modes): ok" in good.stdout
    assert sorted(p.name for p in project.iterdir()) == sorted(p.name for p in ROOT.iterdir())


def test_good_page_prints_what_the_text_builder_writes(built: SphinxTestApp, project: Path) -> None:
    page = (built.outdir / "index.txt").read_text(encoding="utf-8")
    outcome = run_page(project / "index.md")
    assert outcome.read == ["index"]  # the other pages of the project are not read
    assert [shown.record.lineno for shown in outcome.shown] == [11, 22]
    for shown in outcome.shown:
        block = shown.text.strip()
        assert block in page  # the example's whole block, as the builder wrote it
        for title in ("model.train()", "model.eval()"):
            assert panel(block, title) == panel(page[page.index(block):], title)
            assert any(isinstance(item, str) and "tensor(" in item for item in panel(block, title))


def test_rst_page(project: Path, built: SphinxTestApp) -> None:
    ran = command(project / "page.rst")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "page.rst:4 (Dropout, written in rST): ok" in ran.stdout
    page = (built.outdir / "page.txt").read_text(encoding="utf-8")
    for title in ("model.train()", "model.eval()"):
        shown = panel(page, title)
        assert any(isinstance(item, str) and "tensor(" in item for item in shown)
        assert panel(ran.stdout, title) == shown


def test_failing_example_exits_1_with_its_traceback(project: Path) -> None:
    ran = command(project / "failing.md")
    assert ran.returncode == 1
    assert "failing.md:10 (Fails on purpose): failed: exception" in ran.stdout
    assert "Traceback (most recent call last):" in ran.stdout
    assert 'raise ValueError("broken on purpose")' in ran.stdout
    # the warning a build gives, at the line of the code that raised
    assert "failing.md:16: WARNING: example failed: ValueError: broken on purpose" in ran.stdout
    assert "failing.md:3: ok" in ran.stdout  # the other example of the page still ran
    # a wrong option: not run, with the build's warning
    assert "failing.md:19: not run: :repeat:" in ran.stdout
    assert "failing.md:19: WARNING: :repeat:" in ran.stdout
    assert "3 examples, 2 failed" in ran.stdout


def test_contradicted_claim_exits_1_and_names_the_claim(project: Path) -> None:
    ran = command(project / "claim.md")
    assert ran.returncode == 1
    assert "failed: claim" in ran.stdout
    assert ":expect: same: the train and eval outputs differ" in ran.stdout


def test_line_picks_one_example(project: Path) -> None:
    # any line inside the second example picks it: the last one opening at or before it
    ran = command(project / "index.md", "--line", "27", "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = json.loads(ran.stdout)["examples"]
    assert [row["line"] for row in rows] == [22]
    picked = run_page(project / "failing.md", 8)
    assert [shown.record.lineno for shown in picked.shown] == [3]
    assert not picked.failed  # the failing example after it did not run


def test_line_before_any_example_is_a_usage_error(project: Path) -> None:
    ran = command(project / "index.md", "--line", "2")
    assert ran.returncode == 2
    assert "no example opens at or before line 2 (examples open at lines: 11, 22)" in ran.stderr


def test_json_has_the_report_rows(project: Path) -> None:
    ran = command(project / "claim.md", "--json")
    assert ran.returncode == 1
    found = json.loads(ran.stdout)
    assert found["failed"] == 1
    (row,) = found["examples"]
    assert (row["page"], row["line"], row["status"]) == ("claim.md", 3, "failed: claim")
    assert set(row["modes"]) == {"train", "eval"}
    assert all(mode["seconds"] > 0 and mode["peak_memory"] > 0 for mode in row["modes"].values())
    assert row["claims"] == [{"claim": "same", "held": False, "fact": row["claims"][0]["fact"]}]
    assert "differ" in row["claims"][0]["fact"]
    good = json.loads(command(project / "index.md", "--json").stdout)["examples"]
    assert [(r["caption"], r["name"], r["status"]) for r in good] == [
        ("Dropout in both modes", "good-dropout", "ok"), ("", "", "ok"),
    ]
    assert [c["held"] for c in good[1]["claims"]] == [True, True]


def test_no_conf_py_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("# A page\n", encoding="utf-8")
    ran = command(tmp_path / "page.md", cwd=tmp_path)
    assert ran.returncode == 2
    assert "no conf.py found" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_no_such_page_is_a_usage_error(project: Path) -> None:
    ran = command(project / "missing.md")
    assert ran.returncode == 2
    assert "no such page" in ran.stderr


def test_faster_than_a_one_page_build(project: Path, tmp_path: Path) -> None:
    """Its time against a cold ``sphinx-build -b text`` of the same one page (printed for
    the docs): the same work, so about the same time."""
    started = time.perf_counter()
    assert command(project / "page.rst").returncode == 0
    ours = time.perf_counter() - started
    started = time.perf_counter()
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "text", "-q", "-E", "-D", "root_doc=page",
         "-D", "include_patterns=page.rst", str(project), str(tmp_path / "out")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False,
    )
    theirs = time.perf_counter() - started
    assert build.returncode == 0, build.stderr
    print(f"author command {ours:.2f} s, one-page sphinx-build -b text {theirs:.2f} s")
    assert ours < theirs * 2  # a one-page build, not more

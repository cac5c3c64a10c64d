"""One page with a broken example of each kind, each followed by a good one.

Every problem gives exactly one warning, at the right ``file:line``, saying what to
fix; the page shows what happened; the good examples keep their outputs; the build
finishes. The root's ``evaldemo_max_output`` is 1000.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch
from sphinx.testing.util import SphinxTestApp
from torch import nn

from tests.conftest import ROOTS, Build
from tests.helpers import Warned, flat, line_of, outputs, sections, seed_all, titles, warnings

SOURCE = (ROOTS / "test-errors" / "index.md").read_text(encoding="utf-8")
FENCE = "```{evaldemo}"
#: seconds the cached HTML rebuild may take (it needs about three)
HTML_TIME_LIMIT = 30


@dataclass(frozen=True)
class Problem:
    section: str
    subtype: str
    #: the source line the warning points at: a line of the code, or None for the fence
    at_code: str | None
    #: what the warning must say (the problem, and what to do about it)
    says: tuple[str, ...]
    #: what the page shows in place of the output
    shows: tuple[str, ...]

    def line(self) -> int:
        heading = f"## {self.section}"
        return line_of(SOURCE, self.at_code or FENCE, after=heading)


PROBLEMS = [
    Problem(
        "exception", "exception", 'raise RuntimeError("broken on purpose")',
        ("RuntimeError: broken on purpose", ":raises: RuntimeError"),
        ("This example did not run to the end", "Traceback (most recent call last)",
         'File "<example>", line 3', "RuntimeError: broken on purpose"),
    ),
    Problem(
        "timeout", "timeout", None,
        ("timed out after 1 s", ":timeout:"),
        ("timed out after 1 s",),
    ),
    Problem(
        "segfault", "crash", "ctypes.string_at(0)",
        ("SIGSEGV",),
        ("killed by SIGSEGV", "Fatal Python error: Segmentation fault", '"<example>", line 3'),
    ),
    Problem(
        "os-exit", "crash", None,
        ("status 3",),
        ("exited with status 3",),
    ),
    Problem(
        "sys-exit", "exit", "sys.exit(2)",
        ("sys.exit(2)", "remove the call"),
        ("sys.exit(2)", "leaving"),
    ),
    Problem(
        "bad-option", "option", None,
        (":repeat:", "whole number", "'zero'"),
        ("This example was not run", ":repeat: expects a whole number, got 'zero'"),
    ),
    Problem(
        "unknown-model", "model", None,
        (":model: 'nett'", "net"),
        ("'nett'",),
    ),
    Problem(
        "two-modules", "model", None,
        ("encoder", "decoder", ":model:"),
        ("encoder, decoder",),
    ),
    Problem(
        "bad-input", "input", None,
        (":input:", "mat1 and mat2 shapes cannot be multiplied", "fix the :input: expression"),
        ("mat1 and mat2 shapes cannot be multiplied",),
    ),
    Problem(
        "not-a-module", "model", None,
        (":model: 'weights'", "Tensor", "torch.nn.Module"),
        ("'weights'", "Tensor"),
    ),
    Problem(
        "raises-nothing", "raises", None,
        ("expected ValueError, but nothing was raised",),
        ("nothing goes wrong here",),
    ),
    Problem(
        "raises-other", "exception", 'settings["missing"]',
        ("KeyError", "expected ValueError"),
        ("KeyError: 'missing'",),
    ),
    Problem(
        "syntax", "syntax", "y = (x +",
        ("SyntaxError", "never closed"),
        ("SyntaxError: '(' was never closed",),
    ),
    Problem(
        "too-much-output", "output", None,
        ("output cut at 1000 characters",),
        ("4001 characters omitted",),
    ),
]
GOOD_ONLY = ["raises-as-expected"]
SECTIONS = [problem.section for problem in PROBLEMS] + GOOD_ONLY


@pytest.fixture(scope="module")
def text_app(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("errors", "text")


@pytest.fixture(scope="module")
def html_run(text_app: SphinxTestApp) -> subprocess.CompletedProcess[str] | None:
    """``sphinx-build -E -b html`` on the same copy: every result (failures too) is cached.

    Run as a subprocess with a time limit, so a hang fails the test instead of the suite.
    None means it did not finish in time.
    """
    srcdir = text_app.srcdir
    command = [
        sys.executable, "-m", "sphinx", "-b", "html", "-E",
        "-d", str(srcdir / "_build" / "doctrees"), str(srcdir), str(srcdir / "_build" / "html"),
    ]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=HTML_TIME_LIMIT)
    except subprocess.TimeoutExpired:
        return None


@pytest.fixture(scope="module")
def page(text_app: SphinxTestApp) -> dict[str, str]:
    return sections((text_app.outdir / "index.txt").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def warned(text_app: SphinxTestApp) -> list[Warned]:
    return warnings(text_app.warning.getvalue())


@pytest.fixture(scope="module")
def good_eval() -> str:
    """The eval output every good example on the page must show."""
    seed_all(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
    x = torch.randn(2, 3)
    seed_all(0)
    return repr(net.eval()(x))


def _section_of(line: int) -> str:
    """The ``##`` section of index.md holding a source line."""
    heading = ""
    for number, text in enumerate(SOURCE.splitlines(), start=1):
        if number > line:
            break
        if text.startswith("## "):
            heading = text[3:]
    return heading


def _broken_part(page: dict[str, str], section: str) -> str:
    return page[section].split(f'print("ok-after-{section}")')[0]


def _good_part(page: dict[str, str], section: str) -> str:
    return page[section].rsplit(f"ok-after-{section}", 1)[1]


def test_build_finishes(text_app: SphinxTestApp) -> None:
    assert text_app.statuscode == 0
    assert "build succeeded" in text_app.status.getvalue()
    assert (text_app.outdir / "index.txt").is_file()
    assert (text_app.outdir / "other.txt").is_file()


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.section)
def test_one_warning_at_the_right_line(problem: Problem, warned: list[Warned]) -> None:
    mine = [w for w in warned if w.file == "index.md" and _section_of(w.line or 0) == problem.section]
    assert len(mine) == 1, mine
    (warning,) = mine
    assert warning.line == problem.line()
    assert warning.type == f"evaldemo.{problem.subtype}"
    for fragment in problem.says:
        assert fragment in warning.message


def test_no_cascade_and_no_stray_warnings(warned: list[Warned]) -> None:
    """Every warning belongs to a listed problem, and no problem warns twice."""
    places = [(w.file, _section_of(w.line or 0)) for w in warned]
    assert all(file == "index.md" for file, _ in places), warned
    assert len(places) == len(set(places)), warned
    assert {section for _, section in places} <= {p.section for p in PROBLEMS}


def test_expected_exception_gives_no_warning_and_shows_traceback(
    page: dict[str, str], warned: list[Warned]
) -> None:
    assert not [w for w in warned if _section_of(w.line or 0) == "raises-as-expected"]
    shown = _broken_part(page, "raises-as-expected")
    assert "Raised, as the example expects:" in flat(shown)
    assert "Traceback (most recent call last)" in shown
    assert "ValueError: negative sizes are not allowed" in shown
    assert "checking the value" in shown
    assert "did not run to the end" not in shown


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.section)
def test_page_shows_what_happened(problem: Problem, page: dict[str, str]) -> None:
    shown = flat(_broken_part(page, problem.section))
    for fragment in problem.shows:
        assert flat(fragment) in shown


@pytest.mark.parametrize("section", SECTIONS)
def test_good_example_after_it_keeps_its_output(
    section: str, page: dict[str, str], good_eval: str
) -> None:
    good = _good_part(page, section)
    assert titles(good) == ["model.train()", "model.eval()"]
    assert outputs(good, "model.eval()") == [good_eval]
    assert "outputs differ" in flat(good)


def test_crash_report_is_reproducible(page: dict[str, str]) -> None:
    """Two clean builds must give the same page: no thread addresses, no worker threads."""
    shown = _broken_part(page, "segfault")
    assert re.search(r"0x[0-9a-f]{6,}", shown) is None, shown
    assert "threading.py" not in shown


def test_other_page_still_rendered(text_app: SphinxTestApp) -> None:
    seed_all(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
    x = torch.ones(1, 3)
    seed_all(0)
    expected = repr(net.eval()(x))
    other = (text_app.outdir / "other.txt").read_text(encoding="utf-8")
    assert outputs(other, "model.eval()") == [expected]
    assert "ok-on-other-page" in other


def test_html_rebuild_from_cache_finishes_and_warns_the_same(
    html_run: subprocess.CompletedProcess[str] | None, warned: list[Warned], text_app: SphinxTestApp
) -> None:
    """A failed run is cached like a successful one: a fresh read of the page runs nothing,
    warns the same way, and the HTML shows every failure and every good example."""
    assert html_run is not None, f"the HTML build did not finish within {HTML_TIME_LIMIT} s"
    assert html_run.returncode == 0, html_run.stderr
    assert "evaldemo: 0 examples ran" in html_run.stdout
    again = warnings(html_run.stderr)
    assert sorted((w.file, w.line, w.type) for w in again) == sorted(
        (w.file, w.line, w.type) for w in warned
    )
    html = (text_app.srcdir / "_build" / "html" / "index.html").read_text(encoding="utf-8")
    assert "timed out after 1 s" in html
    assert "killed by SIGSEGV" in html
    assert html.count('class="evaldemo-panels') == len(SECTIONS)

"""Option names, repeats and values checked by the extension, alike in MyST and rST: our
warning at the directive's line, the problem on the page, the example not run."""

from __future__ import annotations

from pathlib import Path

import pytest
from sphinx.testing.util import SphinxTestApp

from tests.conftest import ROOTS, Build
from tests.helpers import line_of, soup, warnings

PAGES = {"index": "md", "page": "rst"}


@pytest.fixture(scope="module")
def built(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("options", "html")


def source(name: str) -> str:
    return (ROOTS / "test-options" / f"{name}.{PAGES[name]}").read_text(encoding="utf-8")


def directive_line(name: str, heading: str) -> int:
    return line_of(source(name), "evaldemo", after=heading)


def sections(app: SphinxTestApp, name: str) -> dict[str, object]:
    page = soup(app, f"{name}.html")
    return {section.find("h2", recursive=False).get_text().rstrip("¶"): section
            for section in page.find_all("section")
            if section.find("h2", recursive=False) is not None}


CASES = [
    ("A misspelt option", "unknown option :inptu:; did you mean :input:?"),
    ("An option given twice", ":seed: is given twice (lines {a} and {b}); keep one"),
    ("A bad value", ":repeat: expects a whole number, got 'many'"),
]


@pytest.mark.parametrize("name", list(PAGES))
@pytest.mark.parametrize(("heading", "message"), CASES)
def test_a_bad_option_is_our_warning_at_the_directive_and_the_page_shows_it(
        built: SphinxTestApp, name: str, heading: str, message: str) -> None:
    line = directive_line(name, heading)
    if "{a}" in message:
        seeds = [n for n, text in enumerate(source(name).splitlines(), start=1)
                 if text.strip().startswith(":seed:") and n > line][:2]
        message = message.format(a=seeds[0], b=seeds[1])
    path = str(Path(built.srcdir, f"{name}.{PAGES[name]}"))
    found = [w for w in warnings(built.warning.getvalue())
             if w.path == path and w.line == line]
    assert [(w.message, w.type) for w in found] == [(message, "evaldemo.option")]
    # the example did not run, in any form: the problem is shown instead of output
    section = sections(built, name)[heading]
    example = section.select_one("div.evaldemo")  # type: ignore[attr-defined]
    assert example is not None
    shown = " ".join(example.get_text(" ").split())
    assert "This example was not run:" in shown
    assert message.replace("'", "\u2018", 1).replace("'", "\u2019", 1) in shown or message in shown
    assert example.select_one(".evaldemo-panel") is None
    assert "net = torch.nn.Dropout(0.5)" in example.select_one(".evaldemo-code").get_text()


def test_no_other_warning_about_options(built: SphinxTestApp) -> None:
    # neither MyST's "Unknown option key" nor docutils' "unknown option"/"duplicate option"
    found = warnings(built.warning.getvalue())
    assert {w.type for w in found} == {"evaldemo.option", "evaldemo.exception"}
    assert len([w for w in found if w.type == "evaldemo.option"]) == 2 * len(CASES)


@pytest.mark.parametrize("name", list(PAGES))
def test_good_options_run_and_code_lines_stay_right(built: SphinxTestApp, name: str) -> None:
    examples = soup(built, f"{name}.html").select("div.evaldemo")
    ran = [e for e in examples if e.select_one(".evaldemo-panel") is not None]
    assert len(ran) == {"index": 2, "page": 1}[name]
    for example in ran:
        assert example.select_one(".evaldemo-failure") is None
        assert example.select_one(".evaldemo-input") is not None  # :input: was read
    # an error in the code is located at its line in the file: the option lines counted
    path = str(Path(built.srcdir, f"{name}.{PAGES[name]}"))
    raised = [w for w in warnings(built.warning.getvalue())
              if w.path == path and w.type == "evaldemo.exception"]
    assert [w.line for w in raised] == [line_of(source(name), 'raise ValueError("line')]


def test_a_name_without_a_caption_is_a_reference_with_a_title(built: SphinxTestApp) -> None:
    refs = {a["href"]: a.get_text() for a in soup(built, "index.html").select("a.reference")
            if a.select_one(".std-ref")}
    assert refs["#colon-style"] == "colon-style"
    assert refs["#block-style"] == "Dropout, options as a block"
    rst = {a["href"]: a.get_text() for a in soup(built, "page.html").select("a.reference")
           if a.select_one(".std-ref")}
    assert rst["#rst-named"] == "rst-named"


def test_rst_continuation_line_is_part_of_the_option(built: SphinxTestApp) -> None:
    example = sections(built, "page")["Good options"].select_one(  # type: ignore[attr-defined]
        "div.evaldemo")
    shown = " ".join(example.select_one(".evaldemo-input").get_text().split())
    assert shown.startswith("input = torch.ones( 2, 4)")
    # the flag after it was read too
    assert shown.endswith("eval pass under torch.no_grad()")

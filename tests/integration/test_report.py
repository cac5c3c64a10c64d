"""What a reader sees without HTML: the input line, the claims' verdicts and the report's
totals in the text and LaTeX builders; the report's rows, links, order and totals in HTML."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup
from sphinx.testing.util import SphinxTestApp

from tests.conftest import ROOTS, Build
from tests.helpers import flat, line_of, warnings

SOURCE = {name: (ROOTS / "test-report" / f"{name}.md").read_text(encoding="utf-8")
          for name in ("index", "other")}
FENCES = {
    ("index", line_of(SOURCE["index"], "```{evaldemo}")): "Dropout keeps half",
    ("other", line_of(SOURCE["other"], "```{evaldemo}")): "",
    ("other", line_of(SOURCE["other"], "```{evaldemo}", after="as written")): "A GRU, as written",
}
INPUT_LINES = (
    "input = torch.randn(2, 6)  # seed 3",
    # too long for 80 columns: the notes go on the line above
    "# seed 0, eval pass under torch.no_grad(), 2 passes per mode\n   "
    "input = torch.linspace(-3, 3, 12).reshape(2, 6)",
)
TOTALS = re.compile(
    r"Totals: (?P<n>\d+) examples, (?P<ran>\d+) ran in this build, (?P<cached>\d+) from the "
    r"cache, (?P<failed>\d+) failed; run time (?P<seconds>\d+\.\d\d) s\."
)
_LATEX = {r"\sphinxhyphen{}": "-", r"\PYGZhy{}": "-", r"\PYGZus{}": "_", r"\PYGZsh{}": "#"}


@pytest.fixture(scope="module")
def text_app(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("report", "text")


@pytest.fixture(scope="module")
def latex_app(sphinx_build: Build, text_app: SphinxTestApp) -> SphinxTestApp:
    return sphinx_build("report", "latex")


@pytest.fixture(scope="module")
def html_app(sphinx_build: Build, text_app: SphinxTestApp) -> SphinxTestApp:
    return sphinx_build("report", "html")


def _text(app: SphinxTestApp, name: str) -> str:
    return (app.outdir / f"{name}.txt").read_text(encoding="utf-8")


def _latex(app: SphinxTestApp) -> str:
    tex = (app.outdir / "report.tex").read_text(encoding="utf-8")
    tex = re.sub(r"\\PYG\{[^{}]*\}\{((?:[^{}]|\{[^{}]*\})*)\}", r"\1", tex)  # Pygments' token wrappers
    for escaped, plain in _LATEX.items():
        tex = tex.replace(escaped, plain)
    return tex


def test_only_the_contradicted_claim_warns(text_app: SphinxTestApp, html_app: SphinxTestApp,
                                           latex_app: SphinxTestApp) -> None:
    (warned,) = warnings(text_app.warning.getvalue())
    assert warned.type == "evaldemo.claim"
    assert (warned.file, warned.line) == ("other.md", line_of(SOURCE["other"], "```{evaldemo}"))
    assert warned.message.startswith(":expect: same: the train and eval outputs differ")
    # the later builders read nothing again, so they do not repeat it
    assert warnings(html_app.warning.getvalue()) == warnings(latex_app.warning.getvalue()) == []


def test_text_carries_input_lines_claims_and_totals(text_app: SphinxTestApp) -> None:
    pages = _text(text_app, "index") + _text(text_app, "other")
    for line in INPUT_LINES:
        assert f"\n   {line}\n" in pages
    shown = flat(pages)
    assert 'Claims checked by the build: "differ" holds; "eval-deterministic" holds' in shown
    assert ('Claims checked by the build: "train-random" holds; "same" does NOT hold (the train '
            "and eval outputs differ, largest absolute difference") in shown
    totals = TOTALS.search(flat(_text(text_app, "report")))
    assert totals is not None
    assert totals.group("n", "ran", "cached", "failed") == ("3", "3", "0", "1")


def test_latex_carries_input_lines_claims_and_totals(latex_app: SphinxTestApp) -> None:
    tex = _latex(latex_app)
    for line in INPUT_LINES:
        assert line.replace("\n   ", "\n") in tex
    assert re.search(r"\{differ\}\} holds", tex)
    assert re.search(r"\{same\}\} does NOT hold \(the train and eval outputs differ", tex)
    totals = TOTALS.search(" ".join(tex.split()))
    assert totals is not None
    # the LaTeX build ran nothing: every result came from the text build's cache
    assert totals.group("n", "ran", "cached", "failed") == ("3", "0", "3", "1")


def _report(html_app: SphinxTestApp) -> BeautifulSoup:
    return BeautifulSoup((html_app.outdir / "report.html").read_text(encoding="utf-8"), "html.parser")


def _rows(soup: BeautifulSoup) -> tuple[list[str], list[list[str]], list[BeautifulSoup]]:
    table = soup.select_one("table.evaldemo-report")
    assert table is not None
    headers = [th.get_text(" ", strip=True) for th in table.select("thead th")]
    rows = table.select("tbody tr")
    return headers, [[td.get_text(" ", strip=True) for td in row.find_all("td")] for row in rows], rows


def test_report_rows_link_to_their_example(html_app: SphinxTestApp) -> None:
    _, cells, rows = _rows(_report(html_app))
    assert len(rows) == len(FENCES)
    for row, shown in zip(rows, cells, strict=True):
        link = row.find("a")
        assert link is not None
        page, anchor = link["href"].split("#")
        docname = page.removesuffix(".html")
        assert anchor.startswith(f"evaldemo-{docname}-")
        line = int(anchor.rsplit("-", 1)[1])
        assert shown[0] == f"{docname}:{line}"
        assert FENCES[docname, line] == shown[1]  # the caption, where the example has one
        # the anchor is the example itself on that page
        target = BeautifulSoup((html_app.outdir / page).read_text(encoding="utf-8"), "html.parser")
        example = target.find(id=anchor)
        assert example is not None and "evaldemo" in example["class"]
        if shown[1]:
            assert example.select_one(".evaldemo-caption").get_text(strip=True) == shown[1]


def test_report_shows_each_modes_time(text_app: SphinxTestApp) -> None:
    """One column per mode; the as-written example has no modes, so its cells are empty."""
    table = [line for line in _text(text_app, "report").splitlines() if line.startswith("| ")]
    rows = {cells[0]: cells for line in table[1:]
            if (cells := [c.strip() for c in line.strip("|").split("|")])[0]}
    gru = rows[f"other:{line_of(SOURCE['other'], '```{evaldemo}', after='as written')}"]
    assert gru[5:7] == ["", ""]
    dropout = rows[f"index:{line_of(SOURCE['index'], '```{evaldemo}')}"]
    train, eval_ = float(dropout[5]), float(dropout[6])
    assert 0 < train + eval_ <= float(dropout[4])  # the passes are part of the run


def test_report_is_sorted_by_time_and_totals_add_up(html_app: SphinxTestApp) -> None:
    soup = _report(html_app)
    headers, cells, _ = _rows(soup)
    assert headers[:7] == ["Example", "Caption", "Status", "From", "Run time (ms)", "train (ms)",
                           "eval (ms)"]
    times = [float(row[4]) for row in cells]
    assert times == sorted(times, reverse=True)
    assert [row[2] for row in cells].count("failed: claim") == 1
    assert {row[3] for row in cells} == {"cache"}  # the text build ran them
    totals = TOTALS.search(soup.select_one("p.evaldemo-totals").get_text(" ", strip=True))
    assert totals is not None
    assert totals.group("n", "ran", "cached", "failed") == ("3", "0", "3", "1")
    assert abs(float(totals["seconds"]) - sum(times) / 1000) <= 0.01


def test_report_memory_in_mib_or_left_out_with_the_reason(html_app: SphinxTestApp) -> None:
    soup = _report(html_app)
    headers, cells, _ = _rows(soup)
    note = soup.select_one("p.evaldemo-report-note")
    if "train peak (MiB)" in headers:
        assert note is None
        assert headers[-2:] == ["train peak (MiB)", "eval peak (MiB)"]
        column = [row[-2] for row in cells] + [row[-1] for row in cells]
        assert all(not cell or cell == "n/a" or cell.isdigit() for cell in column), column
    else:
        assert note is not None
        found = re.search(r"peaked between (\d+) and (\d+) MiB, which is the size of a worker "
                          r"with torch loaded", note.get_text(" ", strip=True))
        assert found is not None
        assert int(found[2]) - int(found[1]) <= 16


def test_html_input_line_is_a_copyable_python_block(html_app: SphinxTestApp) -> None:
    soup = BeautifulSoup((html_app.outdir / "index.html").read_text(encoding="utf-8"), "html.parser")
    (example,) = soup.select("div.evaldemo")
    code, line = example.select("div.evaldemo-code"), example.select("div.evaldemo-input")
    assert len(code) == len(line) == 1
    assert line[0] == code[0].find_next_sibling()  # right under the code
    assert "highlight-python" in line[0]["class"]  # a code block, as sphinx-copybutton finds them
    pre = line[0].select_one("div.highlight > pre")
    assert pre is not None and pre.get("tabindex") == "0"
    assert pre.get_text() == INPUT_LINES[0] + "\n"


def test_html_claims_are_badges_next_to_the_panels(html_app: SphinxTestApp) -> None:
    soup = BeautifulSoup((html_app.outdir / "other.html").read_text(encoding="utf-8"), "html.parser")
    box = soup.select_one("div.evaldemo-claims")
    assert box is not None and "evaldemo-claims-broken" in box["class"]
    assert "evaldemo-panels" in box.find_previous_sibling()["class"]
    badges = box.select(".evaldemo-claim")
    assert [(b.code.get_text(), "evaldemo-held" in b["class"]) for b in badges] == [
        ("train-random", True), ("same", False)]

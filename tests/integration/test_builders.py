"""Every builder renders the basic root; non-HTML builders get the same facts as plain blocks."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from docutils import nodes
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples import wiring
from sphinx_evaldemo.examples.nodes import evaldemo_example
from sphinx_evaldemo.examples.records import ExampleRecord, examples
from tests.conftest import ROOTS, Build
from tests.helpers import NUMBER, outputs, warnings

BUILDERS = ("html", "latex", "singlehtml", "dirhtml", "epub", "man")
#: The compact figure's facts: the sentence, where the modes first differ, the table.
FACTS = (
    "(Dropout, p=0.5) zeroed",
    "scaled the rest by",
    "1/(1 - 0.5) = 2",
    "Train and eval first differ at",
    "The train and eval outputs differ in",
    "Layer by layer",
)


@pytest.fixture(scope="module")
def built(sphinx_build: Build, basic_text: SphinxTestApp) -> dict[str, SphinxTestApp]:
    """All builders on the same copy as the text build: results come from its cache."""
    apps = {"text": basic_text}
    for name in BUILDERS:
        apps[name] = sphinx_build("basic", name)
    return apps


@pytest.fixture(scope="module")
def eval_numbers(basic_text: SphinxTestApp) -> list[str]:
    """The numbers of the eval output, as the text build printed them."""
    page = (basic_text.outdir / "index.txt").read_text(encoding="utf-8")
    return NUMBER.findall(outputs(page, "model.eval()")[0])


@pytest.fixture(scope="module")
def eval_block(basic_text: SphinxTestApp) -> str:
    page = (basic_text.outdir / "index.txt").read_text(encoding="utf-8")
    return outputs(page, "model.eval()")[0]


_LATEX_ESCAPES = {
    r"\sphinxhyphen{}": "-",
    r"\PYGZhy{}": "-",
    r"\PYGZus{}": "_",
    r"\PYGZlt{}": "<",
    r"\PYGZgt{}": ">",
    "\u00a0": " ",  # a no-break space (the sentence keeps "1/(1 - p)" on one line)
}


def _unescape_latex(tex: str) -> str:
    for escaped, plain in _LATEX_ESCAPES.items():
        tex = tex.replace(escaped, plain)
    return tex


def _contains_in_order(text: str, needles: list[str]) -> bool:
    position = 0
    for needle in needles:
        position = text.find(needle, position)
        if position < 0:
            return False
        position += len(needle)
    return True


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_succeeds_without_warnings(built: dict[str, SphinxTestApp], name: str) -> None:
    app = built[name]
    assert app.statuscode == 0
    assert warnings(app.warning.getvalue()) == []


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_reuses_the_stored_result(built: dict[str, SphinxTestApp], name: str) -> None:
    """The text build ran the example; the other builders show the cache's result, never a new run."""
    assert wiring.runner(built["text"]).source(_record(built["text"])) == "run"
    app = built[name]
    runner = wiring.runner(app)
    assert runner.ran == 0
    assert re.search(r"evaldemo: [1-9]\d* examples ran", app.status.getvalue()) is None
    record = _record(app)
    assert runner.source(record) == "cache"
    shown = runner.result(record)
    assert shown is not None and shown.ok
    assert shown == runner.cache.get(record.key or "")


def _record(app: SphinxTestApp) -> ExampleRecord:
    (record,) = examples(app.env)["index"]
    return record


def test_latex_has_both_panels_and_the_facts(
    built: dict[str, SphinxTestApp], eval_numbers: list[str], eval_block: str
) -> None:
    tex = _unescape_latex(next(built["latex"].outdir.glob("*.tex")).read_text(encoding="utf-8"))
    train, ev = tex.find("net.train()"), tex.find("net.eval()")
    assert 0 <= train < ev
    for fact in FACTS:
        assert fact in tex
    assert _contains_in_order(tex[ev:], eval_numbers)
    assert eval_block in tex[ev:]
    assert "evaldemo.css" not in tex
    assert not list(built["latex"].outdir.rglob("evaldemo.css"))


def test_text_has_both_panels_and_the_facts(built: dict[str, SphinxTestApp]) -> None:
    text = (built["text"].outdir / "index.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert 0 <= lines.index("net.train()") < lines.index("net.eval()")  # plain titles
    assert '**"' not in text
    for fact in FACTS:
        assert fact in " ".join(text.split())
    # an 80-column terminal: nothing of the example is wider (the code is the author's)
    assert all(len(line) <= 80 for line in lines[lines.index("net.train()") - 12:])


def test_man_page_keeps_panels_and_facts(
    built: dict[str, SphinxTestApp], eval_numbers: list[str]
) -> None:
    (page,) = built["man"].outdir.rglob("*.1")
    man = page.read_text(encoding="utf-8").replace("\\-", "-")
    assert 0 <= man.find("net.train()") < man.find("net.eval()")
    flat = " ".join(man.replace("\\(bu", "").replace("\\ ", " ").split())
    for fact in FACTS:
        assert fact in flat
    assert _contains_in_order(man[man.find("net.eval()") :], eval_numbers)


def _soup(app: SphinxTestApp, path: str) -> BeautifulSoup:
    return BeautifulSoup((app.outdir / path).read_text(encoding="utf-8"), "html.parser")


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("html", "index.html"),
        ("singlehtml", "index.html"),
        ("dirhtml", "index.html"),
        ("epub", "index.xhtml"),
    ],
)
def test_html_panels_are_labelled_sections(
    built: dict[str, SphinxTestApp], name: str, path: str, eval_numbers: list[str]
) -> None:
    soup = _soup(built[name], path)
    (box,) = soup.select("div.evaldemo-panels")
    sections = box.find_all("section", recursive=False)
    assert [s.get("aria-label") for s in sections] == [
        "net.train() output",
        "net.eval() output",
    ]
    assert [s.find(class_="evaldemo-title").get_text(strip=True) for s in sections] == [
        "net.train()",
        "net.eval()",
    ]
    assert "evaldemo-train" in sections[0]["class"]
    assert "evaldemo-eval" in sections[1]["class"]
    assert NUMBER.findall(sections[1].find("pre").get_text()) == eval_numbers
    example = " ".join(soup.select_one("div.evaldemo").get_text(" ", strip=True).split())
    for fact in FACTS:
        assert fact in example


@pytest.mark.parametrize(("name", "path"), [("html", "index.html"), ("dirhtml", "index.html")])
def test_html_links_the_stylesheet(built: dict[str, SphinxTestApp], name: str, path: str) -> None:
    links = [link.get("href", "") for link in _soup(built[name], path).find_all("link")]
    assert any(href.split("?")[0] == "_static/evaldemo.css" for href in links)
    assert (built[name].outdir / "_static" / "evaldemo.css").is_file()


def test_latex_table_and_text_table_of_the_full_form_fit_the_page(sphinx_build: Build) -> None:
    """``evaldemo_details = "full"``: every fact, the five-column table within 80 columns in
    text and within the text width in LaTeX."""
    text_app = sphinx_build("basic", "text", copy="basic-full", confoverrides={"evaldemo_details": "full"})
    text = (text_app.outdir / "index.txt").read_text(encoding="utf-8")
    assert "Every fact of the run" in text and "Train against eval, element by element" in text
    assert "plotted" not in text
    table = [line for line in text.splitlines() if line.startswith(("+-", "|"))]
    assert table and all(len(line) <= 80 for line in table)
    assert len(table[1].strip("|").split("|")) == 5
    latex = sphinx_build("basic", "latex", copy="basic-full", confoverrides={"evaldemo_details": "full"})
    tex = next(latex.outdir.glob("*.tex")).read_text(encoding="utf-8")
    assert "Every fact of the run" in tex
    assert r"\begin{tabulary}{\linewidth}" in tex or r"\begin{longtable}" in tex


def test_one_doctree_for_every_builder(tmp_path: Path) -> None:
    """The example's nodes are the same whatever the builder: HTML's layout comes from its
    visitors only, never from a second form of the same content."""
    srcdir = tmp_path / "basic"
    shutil.copytree(ROOTS / "test-display", srcdir)
    trees: dict[str, list[str]] = {}
    for name in ("text", "html", "latex"):
        app = SphinxTestApp(name, srcdir=srcdir)

        def keep(app: Any, doctree: nodes.document, docname: str, name: str = name) -> None:
            trees[name] = [node.pformat() for node in doctree.findall(evaldemo_example)]

        app.connect("doctree-resolved", keep, priority=900)  # after the extension's own
        try:
            app.build()
        finally:
            app.cleanup()
    assert len(trees["text"]) > 10
    assert trees["html"] == trees["text"] == trees["latex"]


@pytest.mark.parametrize("root", ["browser", "trace"])
def test_text_of_the_roots_keeps_every_example_within_80_columns(sphinx_build: Build, root: str) -> None:
    """A terminal reads every example, a 1,000-character printout included: the sentence,
    the titles, the tables and the printouts of values fit 80 columns (the code, and
    what the example printed itself, are shown as written)."""
    app = sphinx_build(root, "text", copy=f"{root}-80-columns")
    text = (app.outdir / "index.txt").read_text(encoding="utf-8")
    checked = 0
    for chunk in text.split("\n   input = ")[1:]:  # from each example's input line on
        block = chunk.split("\n\n\n", 1)[0]
        over = [line for line in block.splitlines() if len(line) > 80 and ours(line)]
        assert over == [], over
        checked += 1
    assert checked >= 5
    assert root != "browser" or any(len(line) > 80 for line in text.splitlines())  # the long print


def ours(line: str) -> bool:
    """A line the extension wrote: prose, a title, a table, or a printout of values."""
    return not line.startswith("   ") or re.match(r"^\s+(tensor\(|\[|\(|-?\d)", line) is not None

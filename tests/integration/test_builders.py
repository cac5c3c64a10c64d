"""Every builder renders the basic root; non-HTML builders get the same facts as plain blocks."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples import wiring
from sphinx_evaldemo.examples.records import ExampleRecord, examples
from tests.conftest import Build
from tests.helpers import NUMBER, outputs, warnings

BUILDERS = ("html", "latex", "singlehtml", "dirhtml", "epub", "man")
FACTS = (
    "What the run shows",
    "Mode-dependent modules",
    "values differ (largest difference",
    "The modes part at",
    "Repeatability",
    "Output tracks gradients",
    "Buffers changed by the pass",
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
    train, ev = tex.find("model.train()"), tex.find("model.eval()")
    assert 0 <= train < ev
    for fact in FACTS:
        assert fact in tex
    assert _contains_in_order(tex[ev:], eval_numbers)
    assert eval_block in tex[ev:]
    assert "evaldemo.css" not in tex
    assert not list(built["latex"].outdir.rglob("evaldemo.css"))


def test_text_has_both_panels_and_the_facts(built: dict[str, SphinxTestApp]) -> None:
    text = (built["text"].outdir / "index.txt").read_text(encoding="utf-8")
    assert 0 <= text.find('"model.train()"') < text.find('"model.eval()"')
    for fact in FACTS:
        assert fact in text


def test_man_page_keeps_panels_and_facts(
    built: dict[str, SphinxTestApp], eval_numbers: list[str]
) -> None:
    (page,) = built["man"].outdir.rglob("*.1")
    man = page.read_text(encoding="utf-8").replace("\\-", "-")
    assert 0 <= man.find("model.train()") < man.find("model.eval()")
    for fact in FACTS:
        assert fact in man
    assert _contains_in_order(man[man.find("model.eval()") :], eval_numbers)


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
        "model.train() output",
        "model.eval() output",
    ]
    assert [s.find(class_="evaldemo-title").get_text(strip=True) for s in sections] == [
        "model.train()",
        "model.eval()",
    ]
    assert "evaldemo-train" in sections[0]["class"]
    assert "evaldemo-eval" in sections[1]["class"]
    assert NUMBER.findall(sections[1].find("pre").get_text()) == eval_numbers
    facts = soup.select_one("div.evaldemo-comparison").get_text(" ", strip=True)
    for fact in FACTS:
        assert fact in facts


@pytest.mark.parametrize(("name", "path"), [("html", "index.html"), ("dirhtml", "index.html")])
def test_html_links_the_stylesheet(built: dict[str, SphinxTestApp], name: str, path: str) -> None:
    links = [link.get("href", "") for link in _soup(built[name], path).find_all("link")]
    assert any(href.split("?")[0] == "_static/evaldemo.css" for href in links)
    assert (built[name].outdir / "_static" / "evaldemo.css").is_file()

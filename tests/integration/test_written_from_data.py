"""HTML writes the comparison's sentences and per-layer table from their data; every other
builder gets docutils nodes. With Sphinx's own HTML translator, both forms of the same
real results must come out as the same HTML, byte for byte."""

from __future__ import annotations

import pytest
from docutils import nodes
from docutils.utils import new_document
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples import summary, wiring
from sphinx_evaldemo.examples.model import ExampleResult
from tests.conftest import Build


@pytest.fixture(scope="module")
def app(sphinx_build: Build) -> SphinxTestApp:
    """The trace root (deep models, hostile reprs, notes, several outputs) built in HTML."""
    return sphinx_build("trace", "html", copy="trace-written-from-data")  # its own clean build


def _html(app: SphinxTestApp, box: nodes.Node) -> str:
    document = new_document("<facts>", app.builder.docsettings)  # type: ignore[attr-defined]  # HTML builders have it
    document += box
    translator = app.builder.create_translator(document, app.builder)
    document.walkabout(translator)
    return "".join(translator.body)  # type: ignore[attr-defined]  # the HTML translator's output


def _results(app: SphinxTestApp) -> list[ExampleResult]:
    found = [r for r in wiring.runner(app).results.values() if r.runs and r.failure is None]
    assert len(found) >= 6
    return found


def test_the_facts_from_data_are_the_facts_from_nodes(app: SphinxTestApp) -> None:
    checked = 0
    for result in _results(app):
        as_nodes = summary.facts(result, html=False)
        from_data = summary.facts(result, html=True)
        as_nodes["classes"].append("no-search")  # as the page adds it
        from_data["classes"].append("no-search")
        if isinstance(from_data, summary.evaldemo_facts):
            checked += 1
        expected = _html(app, as_nodes)
        assert _html(app, from_data) == expected
    assert checked >= 5


def test_several_outputs_and_claims_take_the_docutils_form(app: SphinxTestApp) -> None:
    result = _results(app)[0]
    claims = nodes.paragraph("", "Claims checked by the build: ")
    assert not isinstance(summary.facts(result, claims, html=True), summary.evaldemo_facts)

"""MyST-NB instead of MyST-Parser, in either order of ``extensions``: examples run and
articles get their header, ``[TOC]`` and tag pages on MyST-NB's ``.md`` pages (and the
same root without MyST-NB, for the same pages from MyST-Parser)."""

from __future__ import annotations

import pytest
from sphinx.config import Config
from sphinx.testing.util import SphinxTestApp

from tests.conftest import Build
from tests.helpers import soup, warnings

ORDERS = {"nb-first": ["myst_nb", "sphinx_evaldemo"], "nb-last": ["sphinx_evaldemo", "myst_nb"],
          "myst-parser": ["sphinx_evaldemo"]}


@pytest.fixture(scope="module", params=list(ORDERS))
def built(request: pytest.FixtureRequest, sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("mystnb", "html", copy=f"mystnb-{request.param}",
                        confoverrides={"extensions": ORDERS[request.param]})


def test_builds_clean_with_myst_nb_as_the_markdown_parser(built: SphinxTestApp) -> None:
    # the one warning is the misspelt option's (below)
    assert [w.type for w in warnings(built.warning.getvalue())] == ["evaldemo.option"]
    assert "sphinx_evaldemo" in built.extensions
    if "myst_nb" in built.config.extensions:
        # MyST-NB, not MyST-Parser, reads the .md pages; MyST-Parser was not set up besides
        assert built.config.source_suffix[".md"] == "myst-nb"
        assert "myst_parser" not in built.extensions
    else:
        assert built.config.source_suffix[".md"] == "markdown"
        assert "myst_parser" in built.extensions
    # the root's own source_suffix kept MyST-NB's suffix out of Sphinx's shared default,
    # which the test builds after this one read
    assert "myst-nb" not in Config.config_values["source_suffix"].default.values()


def test_examples_run_on_its_pages(built: SphinxTestApp) -> None:
    for name in ("index.html", "posts/dropout-note.html"):
        page = soup(built, name)
        example = page.select_one("div.evaldemo")
        assert example is not None, name
        assert example.select_one(".evaldemo-train") is not None, name
        assert example.select_one(".evaldemo-eval") is not None, name
        assert example.select_one(".evaldemo-failure") is None, name


def test_articles_get_header_toc_and_tag_pages(built: SphinxTestApp) -> None:
    page = soup(built, "posts/dropout-note.html")
    assert page.h1 is not None and page.h1.get_text().rstrip("¶") == (
        "Dropout: what eval mode turns off")
    header = page.select_one("header.evaldemo-article")
    assert header is not None
    assert "Mei Chen" in header.get_text()
    assert "In eval mode dropout is the identity." in header.select_one(".evaldemo-tldr").get_text()
    # [TOC] stands after the first section: it still lists every section of the post
    toc = page.select_one("nav.evaldemo-toc")
    assert toc is not None and "[TOC]" not in page.get_text()
    assert [a["href"] for a in toc.find_all("a")] == ["#setting", "#in-train-mode", "#in-eval-mode"]
    tag = soup(built, "tags/dropout.html")
    assert [a.get_text() for a in tag.select(".evaldemo-listing-title a")] == [
        "Dropout: what eval mode turns off"]


def test_a_misspelt_option_is_our_warning_and_the_page_shows_it(built: SphinxTestApp) -> None:
    [found] = warnings(built.warning.getvalue())
    assert (found.path, found.line) == (str(built.srcdir / "options.md"), 3)
    assert found.message == "unknown option :inptu:; did you mean :input:?"
    example = soup(built, "options.html").select_one("div.evaldemo")
    assert "This example was not run:" in example.get_text()
    assert example.select_one(".evaldemo-panel") is None

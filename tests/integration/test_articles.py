"""Articles, built for real: header, [TOC], meta tags, tag pages, listings, warnings, escaping."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup, Tag
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.articles import names
from tests.helpers import soup, warnings_of

pytestmark = pytest.mark.sphinx("html", testroot="articles", freshenv=True)

KR = "posts/kr-post"
SCRIPT_TAG = names.file_name("<script>alert('tag')</script>")
SCRIPT_AUTHOR = names.file_name("<script>alert('author')</script>")
KR_TITLE = "Why validation loss jumps after resuming"


def metas(page: BeautifulSoup) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for meta in page.find_all("meta"):
        name = meta.get("name") or meta.get("property")
        if name:
            found.setdefault(str(name), []).append(str(meta.get("content")))
    return found


def listing(node: Tag) -> list[tuple[str, str]]:
    """``(title, href)`` of each item of a listing."""
    return [(a.get_text(), str(a["href"]))
            for a in node.select(".evaldemo-listing-item .evaldemo-listing-title a")]


def body_text(node: Tag | None) -> str:
    assert node is not None
    return " ".join(node.get_text(" ").split())


# --------------------------------------------------------------------------- the article page


def test_knowledge_repo_post_gets_header_title_and_toc(app: SphinxTestApp) -> None:
    app.build()
    assert warnings_of(app) == []
    page = soup(app, f"{KR}.html")

    # the front matter's title is the page's H1, <title>, toctree and search entry
    assert page.h1 is not None and page.h1.get_text().rstrip("¶") == KR_TITLE
    assert page.title is not None and page.title.get_text().startswith(KR_TITLE)
    index = soup(app, "index.html")
    assert index.select_one(f'.toctree-wrapper a[href="{KR}.html"]').get_text() == KR_TITLE
    assert f'"{KR_TITLE}"' in (app.outdir / "searchindex.js").read_text(encoding="utf-8")

    # the ## sections nest under it
    section = page.find("section", id="method")
    assert section is not None and section.h2 is not None and section.find("h3") is not None

    header = page.find("header", class_="evaldemo-article")
    assert header is not None and header.find_parent("section") is page.h1.parent
    assert body_text(header.select_one(".evaldemo-subtitle")) == (
        "A Knowledge Repo post, copied in unchanged")
    assert body_text(header.select_one(".evaldemo-meta")) == (
        "By Ada Lovelace and Grace Hopper · created 28 Nov 2026 · updated 29 Nov 2026 · "
        "1 min read")
    assert {a.get_text(): a["href"] for a in header.select(".evaldemo-meta a")} == {
        "Ada Lovelace": "../authors/ada-lovelace.html",
        "Grace Hopper": "../authors/grace-hopper.html"}
    assert [t["datetime"] for t in header.find_all("time")] == ["2026-11-28", "2026-11-29"]
    tags = {a.get_text(): a["href"] for a in header.select(".evaldemo-tags a")}
    assert tags == {"pytorch": "../tags/pytorch.html",
                    "Deep Learning": "../tags/deep-learning.html",
                    "réseaux neuronaux": "../tags/r%C3%A9seaux-neuronaux.html"}
    tldr = header.select_one(".evaldemo-tldr")
    assert tldr is not None and tldr.get("role") == "doc-abstract"
    assert tldr.em is not None and tldr.em.get_text() == "without"
    assert tldr.code is not None and tldr.code.get_text() == "model.train()"
    assert tldr.a is not None and tldr.a["href"] == "https://pytorch.org/docs/stable/"
    thumb = header.select_one("img.evaldemo-thumbnail")
    assert thumb is not None and thumb["src"] == "../_images/kr-thumb.svg"
    assert (app.outdir / "_images" / "kr-thumb.svg").is_file()

    # [TOC] is the page's local table of contents, linked, nested
    toc = page.select_one("nav.evaldemo-toc")
    assert toc is not None and "[TOC]" not in page.get_text()
    assert [a["href"] for a in toc.find_all("a")] == [
        "#motivation", "#method", "#setup", "#results", "#conclusion"]
    assert toc.select_one("li li a")["href"] == "#setup"

    # path is read, kept in the page's metadata, and not shown (nor used for the URL)
    record = app.env.evaldemo_articles[KR]  # type: ignore[attr-defined]
    assert (record.meta.path, record.meta.extra) == ("projects/resume.kp", {})
    assert app.env.metadata[KR]["path"] == "projects/resume.kp"
    assert "resume.kp" not in page.get_text()

    # a page without front matter keeps its [TOC] paragraph as it is
    assert "[TOC]" in soup(app, "posts/plain.html").get_text()


def test_page_with_h1_keeps_it_as_title(app: SphinxTestApp) -> None:
    app.build()
    page = soup(app, "posts/with-h1.html")
    assert page.title is not None and page.title.get_text().startswith("The real page title")
    assert len(page.find_all("h1")) == 1
    assert metas(page)["og:title"] == ["Listing title for the H1 page"]
    # thumbnail: 0 is the page's first image, not repeated in the header
    assert page.select_one("header img") is None
    assert metas(page)["og:image"] == ["../_images/figure.svg"]
    assert page.select_one("header time")["datetime"] == "2026-11-30T09:15:00+01:00"
    assert listing(soup(app, "index.html"))[0][0] == "Listing title for the H1 page"


def test_meta_tags(app: SphinxTestApp) -> None:
    app.build()
    found = metas(soup(app, f"{KR}.html"))
    summary = "Resuming without model.train() leaves Dropout off; see the docs."
    assert found["description"] == [summary]
    assert found["keywords"] == ["pytorch, Deep Learning, réseaux neuronaux"]
    assert found["author"] == ["Ada Lovelace, Grace Hopper"]
    assert found["og:title"] == [KR_TITLE]
    assert found["og:description"] == [summary]
    assert found["og:type"] == ["article"]
    assert found["og:image"] == ["../_images/kr-thumb.svg"]  # relative without html_baseurl
    assert found["article:published_time"] == ["2026-11-28"]
    assert found["article:tag"] == ["pytorch", "Deep Learning", "réseaux neuronaux"]
    assert "og:title" not in metas(soup(app, "posts/plain.html"))


@pytest.mark.sphinx("html", testroot="articles", srcdir="articles-baseurl", freshenv=True,
                    confoverrides={"html_baseurl": "https://example.org/docs/",
                                   "myst_html_meta": {"description": "set by html_meta"}})
def test_og_image_is_absolute_under_html_baseurl(app: SphinxTestApp) -> None:
    app.build()
    assert warnings_of(app) == []
    found = metas(soup(app, f"{KR}.html"))
    assert found["og:image"] == ["https://example.org/docs/_images/kr-thumb.svg"]
    assert metas(soup(app, "posts/older.html"))["og:image"] == ["https://example.org/thumb.png"]
    # a tag the page already has is not written twice: MyST's html_meta wins
    assert found["description"] == ["set by html_meta"]
    assert found["og:description"] == [
        "Resuming without model.train() leaves Dropout off; see the docs."]


@pytest.fixture
def fake_opengraph(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stands in for sphinxext-opengraph: it writes og:title and og:description."""
    module = types.ModuleType("sphinxext.opengraph")

    def on_page(app: Any, pagename: str, templatename: str, context: dict[str, Any],
                doctree: Any) -> None:
        if doctree is not None:
            context["metatags"] += ('<meta property="og:title" content="theirs" />'
                                    '<meta property="og:description" content="theirs" />')

    def setup(app: Any) -> dict[str, bool]:
        app.connect("html-page-context", on_page)
        return {"parallel_read_safe": True, "parallel_write_safe": True}

    module.setup = setup  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sphinxext.opengraph", module)


@pytest.mark.sphinx("html", testroot="articles", srcdir="articles-ogp", freshenv=True,
                    confoverrides={"extensions": ["sphinx_evaldemo", "sphinxext.opengraph"]})
@pytest.mark.usefixtures("fake_opengraph")
def test_defers_to_sphinxext_opengraph(app: SphinxTestApp) -> None:
    app.build()
    found = metas(soup(app, f"{KR}.html"))
    assert found["og:title"] == ["theirs"]
    assert found["og:description"] == ["theirs"]
    assert "og:image" not in found and "og:type" not in found  # ours step aside entirely
    assert found["description"] and found["keywords"] and found["author"]  # not Open Graph


# --------------------------------------------------------------------------- escaping


def test_markup_in_front_matter_is_text_everywhere(app: SphinxTestApp) -> None:
    app.build()
    for name in ("posts/escape.html", "index.html", "tags/index.html", f"tags/{SCRIPT_TAG}.html",
                 "authors/index.html", f"authors/{SCRIPT_AUTHOR}.html", "feeds/atom.xml"):
        raw = (app.outdir / name).read_text(encoding="utf-8")
        assert "<script>alert" not in raw, name
        assert not [s for s in BeautifulSoup(raw, "html.parser").find_all("script")
                    if "alert" in s.get_text()], name
    page = soup(app, "posts/escape.html")
    smart = "<script>alert(\u2018title\u2019)</script>"  # headings get typographic quotes
    assert page.h1 is not None and smart in page.h1.get_text()
    header = page.find("header")
    assert body_text(header.select_one(".evaldemo-author")) == "<script>alert('author')</script>"
    assert body_text(header.select_one(".evaldemo-tags a")) == "<script>alert('tag')</script>"
    tldr = header.select_one(".evaldemo-tldr p:not(.evaldemo-tldr-label)")
    assert tldr.get_text() == "Text <script>alert('tldr')</script> and emphasis"
    found = metas(page)
    assert found["og:title"] == ["<script>alert('title')</script> Escaped"]
    # the description is the text the box shows, raw HTML included as text (escaped in
    # the attribute: the parsed value is the text, and no script element was made)
    assert found["description"] == [tldr.get_text()]
    assert found["og:description"] == [tldr.get_text()]
    assert found["keywords"] == ["<script>alert('tag')</script>"]
    assert found["author"] == ["<script>alert('author')</script>"]


# --------------------------------------------------------------------------- tags and listings


def test_tag_pages_and_listings(app: SphinxTestApp) -> None:
    before = sorted(p.relative_to(app.srcdir) for p in app.srcdir.rglob("*")
                    if "_build" not in p.parts)
    app.build()
    after = sorted(p.relative_to(app.srcdir) for p in app.srcdir.rglob("*")
                   if "_build" not in p.parts)
    assert after == before  # nothing written into the source folder

    index = soup(app, "tags/index.html")
    assert index.title is not None and index.title.get_text().startswith("Tags")
    rows = [body_text(li) for li in index.select(".evaldemo-tag-index li")]
    assert rows == ["<script>alert('tag')</script> (1 article)", "Deep Learning (1 article)",
                    "Dropout (2 articles)", "pytorch (2 articles)", "réseaux neuronaux (1 article)"]

    # "dropout" and "Dropout" are one tag; newest created_at first
    dropout = soup(app, "tags/dropout.html")
    assert listing(dropout) == [("Listing title for the H1 page", "../posts/with-h1.html"),
                                ("An older note", "../posts/older.html")]
    item = dropout.select_one(".evaldemo-listing-item")
    assert item.select_one("img")["src"] == "../_images/figure.svg"
    assert body_text(item.select_one(".evaldemo-listing-meta")) == (
        "Alan Turing · created 30 Nov 2026")
    assert body_text(item.select_one(".evaldemo-listing-tldr")) == (
        "A page with its own H1 and an image used as thumbnail.")
    # 30 Nov 09:15 +01:00 is after 28 Nov
    assert [t for t, _ in listing(soup(app, "tags/pytorch.html"))] == [
        "Listing title for the H1 page", KR_TITLE]
    assert (app.outdir / "tags" / "réseaux-neuronaux.html").is_file()

    # the docs' own listings: :limit: and :tags:, newest first
    page = soup(app, "index.html")
    latest, by_tag = page.select(".evaldemo-listing")
    assert listing(latest) == [("Listing title for the H1 page", "posts/with-h1.html"),
                               (KR_TITLE, "posts/kr-post.html"),
                               ("<script>alert('title')</script> Escaped", "posts/escape.html")]
    assert [t for t, _ in listing(by_tag)] == ["Listing title for the H1 page", "An older note"]
    assert latest.select_one(".evaldemo-listing-tldr em").get_text() == "without"
    links = {a.get_text(): a["href"] for a in page.select("a.evaldemo-tag-link")}
    assert links == {"Browse all tags": "tags/index.html", "the PyTorch tag": "tags/pytorch.html"}


def _tag_page_bodies(outdir: Path) -> dict[str, str]:
    pages = {}
    for path in sorted((outdir / "tags").glob("*.html")):
        body = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser").select_one(
            "div.body")
        pages[path.name] = str(body)
    page = BeautifulSoup((outdir / "index.html").read_text(encoding="utf-8"), "html.parser")
    pages["index listings"] = "".join(str(node) for node in page.select(".evaldemo-listing"))
    return pages


def test_parallel_build_gives_the_same_pages(
    make_app: Callable[..., SphinxTestApp], app_params: Any, tmp_path: Path
) -> None:
    args, kwargs = app_params
    serial = make_app(*args, **{**kwargs, "builddir": tmp_path / "serial"})
    serial.build()
    serial.cleanup()  # one app at a time: node classes are registered process-wide
    parallel = make_app(*args, **{**kwargs, "builddir": tmp_path / "parallel"}, parallel=2)
    parallel.build()
    status = re.sub(r"\x1b\[[0-9;]*m", "", parallel.status.getvalue())
    assert parallel.is_parallel_allowed("read") and parallel.is_parallel_allowed("write")
    assert "reading sources... [ 50%] index .. " in status, status  # two chunks: -j 2 read
    assert warnings_of(parallel) == []
    assert _tag_page_bodies(parallel.outdir) == _tag_page_bodies(serial.outdir)


@pytest.mark.sphinx("html", testroot="articles", srcdir="articles-incremental", freshenv=True)
def test_incremental_rebuild_follows_retagging_and_deletion(
    app: SphinxTestApp, make_app: Callable[..., SphinxTestApp], app_params: Any
) -> None:
    app.build()
    assert (app.outdir / "tags" / f"{SCRIPT_TAG}.html").is_file()
    app.cleanup()  # one app at a time: node classes are registered process-wide
    args, kwargs = app_params
    kwargs = {**kwargs, "freshenv": False}

    # nothing changed: no document is written, the tag pages are written all the same
    unchanged = make_app(*args, **kwargs)
    unchanged.build()
    unchanged.cleanup()
    assert "no targets are out of date" in unchanged.status.getvalue()
    assert listing(soup(unchanged, "tags/dropout.html"))

    # retag: older leaves "Dropout" for "archive"; nothing else changes (index.md neither)
    older = app.srcdir / "posts" / "older.md"
    older.write_text(older.read_text(encoding="utf-8").replace("  - Dropout", "  - archive"),
                     encoding="utf-8")
    second = make_app(*args, **kwargs)
    second.build()
    second.cleanup()
    assert "1 changed" in second.status.getvalue()
    assert [t for t, _ in listing(soup(second, "tags/dropout.html"))] == [
        "Listing title for the H1 page"]
    assert [t for t, _ in listing(soup(second, "tags/archive.html"))] == ["An older note"]
    _, by_tag = soup(second, "index.html").select(".evaldemo-listing")
    assert [t for t, _ in listing(by_tag)] == ["Listing title for the H1 page"]

    # delete an article: its tag page goes, the listings and the tag index follow
    (app.srcdir / "posts" / "escape.md").unlink()
    third = make_app(*args, **kwargs)
    third.build()
    assert not (third.outdir / "tags" / f"{SCRIPT_TAG}.html").exists()
    assert not (third.outdir / "authors" / f"{SCRIPT_AUTHOR}.html").exists()
    latest, _ = soup(third, "index.html").select(".evaldemo-listing")
    assert "posts/escape.html" not in [href for _, href in listing(latest)]
    assert "script" not in soup(third, "tags/index.html").select_one("div.body").get_text()


# --------------------------------------------------------------------------- other builders


@pytest.mark.sphinx("text", testroot="articles", freshenv=True)
def test_text_builder_shows_the_header_as_text(app: SphinxTestApp) -> None:
    app.build()
    assert warnings_of(app) == []
    text = (app.outdir / f"{KR}.txt").read_text(encoding="utf-8")
    assert text.startswith(f"{KR_TITLE}\n{'*' * len(KR_TITLE)}\n\n"
                           "A Knowledge Repo post, copied in unchanged\n\n"
                           "By Ada Lovelace and Grace Hopper · created 28 Nov 2026 · updated 29\n"
                           "Nov 2026 · 1 min read\n\n"
                           "Tags: pytorch, Deep Learning, réseaux neuronaux\n\n"
                           "**TL;DR**\n\n"
                           "Resuming *without* \"model.train()\" leaves Dropout off; see the docs.\n\n"
                           "**Contents**\n\n"
                           "* Motivation\n\n* Method\n\n  * Setup\n\n* Results\n\n* Conclusion\n")
    assert not (app.outdir / "tags").exists() and not (app.outdir / "authors").exists()


@pytest.mark.parametrize("builder", ["latex", "epub", "man", "singlehtml", "dirhtml"])
def test_every_builder_builds_the_articles(
    builder: str, make_app: Callable[..., SphinxTestApp], app_params: Any, tmp_path: Path
) -> None:
    _, kwargs = app_params
    app = make_app(builder, **{**kwargs, "builddir": tmp_path,
                               "confoverrides": {"copyright": "2026", "version": "1"}})
    app.build()
    assert warnings_of(app) == []
    output = "\n".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in app.outdir.rglob("*") if p.suffix in {".tex", ".xhtml", ".1",
                                                                       ".html"})
    assert "created 28 Nov 2026" in output
    # the byline's separators are spans of their own in HTML (\DUrole in LaTeX)
    plain = re.sub(r"<[^>]*>|\\DUrole\{[\w-]+\}\{|\}", "", output)
    assert "Ada Lovelace and Grace Hopper" in plain
    if builder in {"epub", "singlehtml", "dirhtml"}:  # elsewhere "<script>" is just text
        assert "<script>alert" not in output
    if builder == "dirhtml":
        assert listing(BeautifulSoup(
            (app.outdir / "tags" / "dropout" / "index.html").read_text(encoding="utf-8"),
            "html.parser"))[0] == ("Listing title for the H1 page", "../../posts/with-h1/")


# --------------------------------------------------------------------------- warnings

ERRORS = [
    ("bad-yaml.md", 4, "frontmatter", "not valid YAML: found unexpected end of stream "
                                      "(key 'tldr'; the other keys are still read)"),
    ("missing.md", 1, "frontmatter", "required key 'authors' is missing"),
    ("missing.md", 1, "frontmatter", "required key 'tldr' is missing"),
    ("missing.md", 1, "frontmatter", "required key 'created_at' is missing"),
    ("wrong-type.md", 2, "frontmatter", "key 'title': got a list; expected a string"),
    ("wrong-type.md", 4, "frontmatter", "key 'authors': got a mapping; expected a name or a "
                                        "list of names"),
    ("wrong-type.md", 8, "frontmatter", "key 'tags': item 2 is a list, which was left out"),
    ("bad-date.md", 5, "frontmatter", "key 'created_at': got '2023-02-30', which is not a "
                                      "valid date (day is out of range for month); expected "
                                      "a date (YYYY-MM-DD)"),
    ("bad-index.md", 6, "thumbnail", "key 'thumbnail': index 3 is out of range: the page has "
                                     "1 image, so the index must be 0"),
    ("missing-file.md", 6, "thumbnail", "key 'thumbnail': the file 'images/nothere.png' does "
                                        "not exist"),
    ("order.md", 5, "frontmatter", "key 'updated_at': 1 Jan 2026 is before created_at "
                                   "(5 Mar 2026)"),
    ("order.md", 8, "frontmatter", "key 'tags' appears twice (lines 7 and 8)"),
    ("no-title.md", 1, "frontmatter", "required key 'title' is missing"),
    ("index.md", 3, "articles", ":limit: expects a positive whole number, got '-2'"),
    ("index.md", 7, "articles", ":tags: expects tag names separated by commas"),
    ("index.md", 11, "tags", "no article is tagged 'no-such-tag'"),
    ("index.md", 11, "authors", "no article is by 'No One', so there is no author page"),
]
#: heading jumps: reported by MyST-Parser, on an ordinary page and inside an article
JUMPS = [("jump.md", 5, "H1 to H3"), ("article-jump.md", 10, "H2 to H4")]


@pytest.mark.sphinx("html", testroot="articles-errors", freshenv=True)
def test_each_bad_input_is_one_warning_at_its_line(app: SphinxTestApp) -> None:
    app.build()
    found = warnings_of(app)
    for name, line, subtype, words in ERRORS:
        matches = [w for w in found if f"{name}:{line}: WARNING:" in w and words in w
                   and w.endswith(f"[evaldemo.{subtype}]")]
        assert len(matches) == 1, (name, line, words, found)
    for name, line, words in JUMPS:
        assert [w for w in found if f"{name}:{line}: WARNING: Non-consecutive header level "
                f"increase; {words}" in w and w.endswith("[myst.header]")], (name, found)
    # nothing else: no cascade, nothing else from MyST
    assert len(found) == len(ERRORS) + len(JUMPS), found

    # each page was built with what was valid
    def header(name: str) -> str:
        return body_text(soup(app, name).find("header"))

    assert header("bad-date.html") == (
        "By Ada · updated 1 Mar 2023 · 1 min read Tags: dates TL;DR Everything else is kept.")
    assert header("bad-yaml.html") == "By Ada · created 1 Mar 2026 · 1 min read Tags: kept"
    assert soup(app, "bad-yaml.html").h1.get_text().rstrip("¶") == "Unterminated string"
    assert header("wrong-type.html").startswith("Shown although the title is not created 2 Mar")
    assert soup(app, "wrong-type.html").h1.get_text().rstrip("¶") == "The page\u2019s own H1"
    assert "Tags: fine " in header("wrong-type.html") + " "
    # a tldr that is a list is a list
    tldr_items = soup(app, "block-tldr.html").select(".evaldemo-tldr ul > li")
    assert [li.get_text().strip() for li in tldr_items] == ["one", "two"]
    assert soup(app, "no-title.html").h1.get_text().rstrip("¶") == "no-title"
    assert soup(app, "missing-file.html").select_one("header img") is None

"""Knowledge Repo posts built for real (``test-kp``): block tldr, ``###`` sections, a ``.kp``
folder, private posts, colliding tags, author pages, Atom feeds, and ABlog beside us."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from defusedxml import ElementTree
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.articles import names
from tests.helpers import soup, warnings_of

KP = "posts/resume-training.kp/knowledge"
BASE = "https://kb.example.org/"
ATOM = "{http://www.w3.org/2005/Atom}"
#: the public posts of test-kp, newest created_at first
PUBLIC = ["Resuming training: why the first epoch looks wrong",
          "Calling a TorchScript model from C++", "A C extension that checks the mode",
          "TorchSharp and eval mode", "A post with a very long tag"]
PRIVATE_TITLE = "Incident review (restricted)"


def local_target(app: SphinxTestApp, page: str, href: str) -> Path | None:
    """The output file a link on ``page`` points at (None: another site)."""
    url = urljoin(BASE + page, href)
    if not url.startswith(BASE):
        return None
    path = unquote(urlsplit(url).path)[len(urlsplit(BASE).path):]
    return app.outdir / (path or "index.html")


def links_in(app: SphinxTestApp) -> dict[str, set[str]]:
    """``{page: hrefs}`` of every HTML page of the build (not the theme's static files)."""
    found = {}
    for path in app.outdir.rglob("*.html"):
        page = path.relative_to(app.outdir).as_posix()
        if page.startswith("_") or not path.is_file():
            continue
        found[page] = {str(a["href"]).split("#")[0] for a in soup(app, page).find_all("a", href=True)
                       if not str(a["href"]).startswith("#")}
    return found


def search_index(app: SphinxTestApp) -> dict[str, object]:
    text = (app.outdir / "searchindex.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("(") + 1: text.rindex(")")])  # type: ignore[no-any-return]


def feed(app: SphinxTestApp, path: str) -> list[dict[str, str]]:
    root = ElementTree.parse(app.outdir / path).getroot()
    assert root.tag == f"{ATOM}feed"
    entries = []
    for entry in root.findall(f"{ATOM}entry"):
        entries.append({
            "title": entry.findtext(f"{ATOM}title") or "",
            "href": entry.find(f"{ATOM}link").get("href"),
            "updated": entry.findtext(f"{ATOM}updated") or "",
            "summary": entry.findtext(f"{ATOM}summary") or "",
        })
    return entries


# --------------------------------------------------------------------------- the posts


@pytest.mark.sphinx("html", testroot="kp", freshenv=True)
def test_knowledge_repo_posts_build_clean(app: SphinxTestApp) -> None:
    app.build()
    assert warnings_of(app) == []  # sphinx-build -W passes

    # a post kept as name.kp/knowledge.md, with its images/, is a page
    page = soup(app, f"{KP}.html")
    assert page.h1.get_text().rstrip("¶") == PUBLIC[0]
    # its ### sections sit under the title as h2, #### as h3; the [TOC] follows them
    assert [h.get_text().rstrip("¶") for h in page.select("section section > h2")] == [
        "Motivation", "Approach", "Results", "Caveats"]
    assert [h.get_text().rstrip("¶") for h in page.select("div.body h3")] == ["Details"]
    assert page.select("div.body h4") == []
    assert [a["href"] for a in page.select("nav.evaldemo-toc a")] == [
        "#motivation", "#approach", "#details", "#results", "#caveats"]
    for image in ("loss.svg", "arch.svg"):
        assert (app.outdir / "_images" / image).is_file()

    # the block tldr: a paragraph, a list with a link, and raw HTML shown as text
    tldr = page.select_one("header .evaldemo-tldr")
    assert [" ".join(li.get_text().split()) for li in tldr.select("ul > li")] == [
        "call model.train() after loading;", "re-create the DataLoader iterator;",
        "see the PyTorch notes."]
    assert tldr.select_one("li a")["href"].startswith("https://pytorch.org/")
    assert tldr.find("table") is None
    assert "<table><tr><th>epoch</th>" in tldr.select_one("pre").get_text()
    description = page.find("meta", attrs={"name": "description"})["content"]
    assert description.startswith("After load_state_dict the model is in whatever mode it was "
                                  "left in. Three things to check, before blaming the optimiser: "
                                  "call model.train() after loading;")
    assert "\n" not in description
    # the characters the box shows, raw HTML as text: the table as it stands in the box
    assert description.endswith("see the PyTorch notes. " + tldr.select_one("pre").get_text().strip())

    # thumbnail: 1 is the page's second image (0-based, as in the Knowledge Repo)
    og_image = page.find("meta", attrs={"property": "og:image"})["content"]
    assert og_image == BASE + "_images/arch.svg"
    # path is kept, not shown, not used for the URL
    assert app.env.metadata[KP]["path"] == "/team/training/resume-training.kp"
    assert "/team/training" not in page.get_text()

    # numeric tags are tags: "2017" has its page
    assert [a.get_text() for a in soup(app, "tags/2017.html").select(
        ".evaldemo-listing-title a")] == [PUBLIC[0]]
    # listing: newest first, the private post nowhere
    index = soup(app, "index.html")
    assert [a.get_text() for a in index.select(".evaldemo-listing-title a")] == PUBLIC


@pytest.mark.sphinx("html", testroot="kp", freshenv=True)
def test_every_link_to_a_generated_page_resolves(app: SphinxTestApp) -> None:
    app.build()
    broken = [(page, href) for page, hrefs in links_in(app).items() for href in hrefs
              if (target := local_target(app, page, href)) is not None and not target.exists()]
    assert broken == []


# --------------------------------------------------------------------------- private posts


@pytest.mark.sphinx("html", testroot="kp", freshenv=True)
def test_private_post_is_built_but_unlisted(app: SphinxTestApp) -> None:
    app.build()
    page = soup(app, "posts/private-note.html")
    assert page.find("meta", attrs={"name": "robots"})["content"] == "noindex"
    assert page.select_one("header .evaldemo-private").get_text() == "private"

    for name in ("index.html", "tags/index.html", "authors/index.html", "tags/c.html"):
        body = soup(app, name).select_one("div.body")
        listed = body.select(".evaldemo-listing, .evaldemo-tag-index, .evaldemo-author-index")
        assert listed, name
        assert all(PRIVATE_TITLE not in node.get_text() for node in listed), name
        assert "Secret Reviewer" not in body.get_text() and "incident" not in body.get_text()
    # its own tag and author have no page; a tag it shares lists only the public posts
    assert not (app.outdir / "tags" / "incident.html").exists()
    assert not (app.outdir / "authors" / "secret-reviewer.html").exists()
    assert [a.get_text() for a in soup(app, "tags/c.html").select(
        ".evaldemo-listing-title a")] == ["A C extension that checks the mode"]
    # nor in any feed
    for path in app.outdir.glob("feeds/**/*.xml"):
        assert PRIVATE_TITLE not in path.read_text(encoding="utf-8"), path
    # nor in the search index: no title, and no word points at it
    index = search_index(app)
    number = index["docnames"].index("posts/private-note")  # type: ignore[attr-defined]
    assert index["titles"][number] == ""  # type: ignore[index]
    for term in ("restrict", "timelin", "outag"):
        docs = index["terms"].get(term, [])  # type: ignore[attr-defined]
        assert number not in (docs if isinstance(docs, list) else [docs]), term


def navigation_titles(app: SphinxTestApp, page: str) -> list[str]:
    """Every link text of the page's navigation: its toctrees, sidebar and previous/next."""
    found = soup(app, page)
    links = found.select(".toctree-wrapper a, .sphinxsidebar a, .related a, link[rel]")
    return [a.get_text() or str(a.get("title", "")) for a in links]


def test_private_post_is_out_of_the_navigation_whoever_includes_it(
        make_app: Callable[..., SphinxTestApp], rootdir: Path, tmp_path: Path) -> None:
    import shutil
    srcdir = tmp_path / "kp"
    shutil.copytree(rootdir / "test-kp", srcdir)
    # the index finds it with a :glob:; another page names it in its own toctree
    (srcdir / "notes.md").write_text(
        "---\norphan: true\n---\n# Notes\n\n```{toctree}\nposts/private-note\nposts/c\n```\n",
        encoding="utf-8")
    # read in parallel: what the readers took out of the toctrees comes back to the main
    # process, so the incremental builds below know which pages to read again
    app = make_app("html", srcdir=srcdir, freshenv=True, warningiserror=True, parallel=2)
    app.build()  # -W: no "document isn't included in any toctree" either
    assert app.is_parallel_allowed("read")
    app.cleanup()  # one app at a time: node classes are registered process-wide
    assert warnings_of(app) == []
    assert (app.outdir / "posts" / "private-note.html").is_file()
    for page in ("index.html", "notes.html", "posts/c.html", "posts/cpp.html",
                 "tags/index.html"):
        assert PRIVATE_TITLE not in " ".join(navigation_titles(app, page)), page
        assert "private-note.html" not in (app.outdir / page).read_text(encoding="utf-8"), page
    assert "A C extension that checks the mode" in navigation_titles(app, "notes.html")

    # the post turns public: the pages naming it are read again and show it
    post = srcdir / "posts" / "private-note.md"
    post.write_text(post.read_text(encoding="utf-8").replace("private: true", "private: false"),
                    encoding="utf-8")
    public = make_app("html", srcdir=srcdir, warningiserror=True)
    public.build()
    public.cleanup()
    assert PRIVATE_TITLE in navigation_titles(public, "index.html")
    assert PRIVATE_TITLE in navigation_titles(public, "notes.html")
    # and private again: out again
    post.write_text(post.read_text(encoding="utf-8").replace("private: false", "private: true"),
                    encoding="utf-8")
    again = make_app("html", srcdir=srcdir, warningiserror=True)
    again.build()
    again.cleanup()
    assert warnings_of(again) == []
    for page in ("index.html", "notes.html"):
        assert PRIVATE_TITLE not in " ".join(navigation_titles(again, page)), page


@pytest.mark.sphinx("html", testroot="kp", srcdir="kp-exclude", freshenv=True,
                    confoverrides={"evaldemo_private": "exclude"})
def test_private_posts_can_be_left_out_entirely(app: SphinxTestApp) -> None:
    app.build()
    assert warnings_of(app) == []
    assert not (app.outdir / "posts" / "private-note.html").exists()
    assert "posts/private-note" not in app.env.all_docs
    assert "posts/private-note" not in search_index(app)["docnames"]  # type: ignore[operator]
    assert "1 private post left out" in app.status.getvalue()
    assert PRIVATE_TITLE not in soup(app, "index.html").get_text()


@pytest.mark.sphinx("html", testroot="kp", srcdir="kp-incremental", freshenv=True)
def test_a_tag_that_gets_a_page_later_is_linked_on_unchanged_pages(
    app: SphinxTestApp, make_app: Callable[..., SphinxTestApp], app_params: Any
) -> None:
    app.build()
    chip = soup(app, "posts/private-note.html").select("header .evaldemo-tag")[0]
    assert (chip.name, chip.get_text()) == ("span", "incident")  # only a private post has it
    app.cleanup()
    (app.srcdir / "posts" / "postmortem.md").write_text(
        "---\ntitle: Postmortems in public\nauthors: Ravi Kumar\ntags: [incident]\n"
        "created_at: 2026-11-02\ntldr: How we write them.\n---\n\n## Body\n\nText.\n",
        encoding="utf-8")
    args, kwargs = app_params
    again = make_app(*args, **{**kwargs, "freshenv": False})
    again.build()
    status = re.sub(r"\x1b\[[0-9;]*m", "", again.status.getvalue())
    assert "1 added" in status and "private-note" not in status.split("writing output")[0]
    chip = soup(again, "posts/private-note.html").select("header .evaldemo-tag")[0]
    assert (chip.name, chip["href"]) == ("a", "../tags/incident.html")


# --------------------------------------------------------------------------- tag pages


@pytest.mark.sphinx("html", testroot="kp", freshenv=True)
def test_tags_that_differ_get_pages_that_differ(app: SphinxTestApp) -> None:
    app.build()
    headers = {}
    for tag in ("C", "C++", "C#", "index", "PyTorch"):
        path = app.outdir / "tags" / f"{names.file_name(tag)}.html"
        assert path.is_file(), tag
        headers[tag] = (soup(app, path.relative_to(app.outdir).as_posix()).h1.get_text(),
                        [a.get_text() for a in soup(app, f"tags/{path.name}").select(
                            ".evaldemo-listing-title a")])
    assert headers == {
        "C": ("Articles tagged “C”", ["A C extension that checks the mode"]),
        "C++": ("Articles tagged “C++”", ["Calling a TorchScript model from C++"]),
        "C#": ("Articles tagged “C#”", ["TorchSharp and eval mode"]),
        "index": ("Articles tagged “index”", ["A C extension that checks the mode"]),
        # "PyTorch" and "pytorch" differ only in case: one tag, spelt as most posts do
        "PyTorch": ("Articles tagged “pytorch”", [PUBLIC[0], PUBLIC[1], PUBLIC[3]]),
    }
    assert len({names.file_name(t) for t in ("C", "C++", "C#")}) == 3
    assert names.file_name("index") != "index"
    # tags/index.html is the tag index, and it links each tag once
    rows = [" ".join(li.get_text().split()) for li in soup(app, "tags/index.html").select(
        ".evaldemo-tag-index li")]
    assert rows[:4] == ["2017 (1 article)", "C (1 article)", "C# (1 article)",
                        "C++ (1 article)"]
    # the 500-character tag: a short, safe file, linked from its article
    long_tag = next(t for t in app.env.evaldemo_articles["posts/long-tag"].meta.tags)  # type: ignore[attr-defined]
    assert len(long_tag) == 500
    file = names.file_name(long_tag)
    assert len(file) <= names.MAX_BYTES and (app.outdir / "tags" / f"{file}.html").is_file()
    assert soup(app, "posts/long-tag.html").select_one("header .evaldemo-tags a")["href"] == (
        f"../tags/{file}.html")


@pytest.mark.sphinx("html", testroot="kp", srcdir="kp-blocked", freshenv=True)
def test_a_tag_page_that_cannot_be_written_is_never_linked(app: SphinxTestApp) -> None:
    (app.outdir / "tags" / "c.html").mkdir(parents=True)  # a folder in the way
    app.build()
    found = warnings_of(app)
    assert len(found) == 1, found
    assert "the page 'tags/c' (a tag or author page) cannot be written" in found[0]
    assert found[0].endswith("[evaldemo.tags]")
    linking = [page for page, hrefs in links_in(app).items()
               if app.outdir / "tags" / "c.html" in {local_target(app, page, h) for h in hrefs}]
    assert linking == []
    header_tags = soup(app, "posts/c.html").select("header .evaldemo-tags .evaldemo-tag")
    assert [(t.name, t.get_text()) for t in header_tags] == [("span", "C"), ("a", "index")]
    assert (app.outdir / "tags" / f"{names.file_name('C++')}.html").is_file()  # the rest is built


# --------------------------------------------------------------------------- authors


@pytest.mark.sphinx("html", testroot="kp", freshenv=True)
def test_author_pages(app: SphinxTestApp) -> None:
    app.build()
    rows = [" ".join(li.get_text().split()) for li in soup(app, "authors/index.html").select(
        ".evaldemo-author-index li")]
    # "mei_chen" and "Mei Chen" are one author; the private post's author has no page
    assert rows == ["Mei Chen (2 articles)", "r.kumar (1 article)",
                    "Ravi Kumar (3 articles)"]
    mei = soup(app, "authors/mei-chen.html")
    assert mei.h1.get_text() == "Articles by Mei Chen"
    assert [a.get_text() for a in mei.select(".evaldemo-listing-title a")] == PUBLIC[:2]
    header = soup(app, f"{KP}.html").select_one("header .evaldemo-meta")
    assert {a.get_text(): a["href"] for a in header.select("a.evaldemo-author")} == {
        "mei_chen": "../../authors/mei-chen.html",
        "r.kumar": f"../../authors/{names.file_name('r.kumar')}.html"}
    links = {a.get_text(): a["href"] for a in soup(app, "index.html").select(
        "a.evaldemo-author-link")}
    assert links == {"all authors": "authors/index.html", "Mei\u2019s posts": "authors/mei-chen.html"}


# --------------------------------------------------------------------------- feeds


@pytest.mark.sphinx("html", testroot="kp", freshenv=True)
def test_feeds_are_atom_newest_first_with_absolute_links(app: SphinxTestApp) -> None:
    app.build()
    entries = feed(app, "feeds/atom.xml")
    assert [e["title"] for e in entries] == PUBLIC
    assert entries[0]["summary"].startswith("After load_state_dict the model")
    assert entries[0]["updated"] == "2026-10-09T00:00:00+00:00"
    for entry in entries:
        assert entry["href"].startswith(BASE)
        assert local_target(app, "", entry["href"]).is_file(), entry["href"]
    pytorch = feed(app, f"feeds/tags/{names.file_name('pytorch')}.xml")
    assert [e["title"] for e in pytorch] == [PUBLIC[0], PUBLIC[1], PUBLIC[3]]
    assert [e["title"] for e in feed(app, f"feeds/tags/{names.file_name('C#')}.xml")] == [
        PUBLIC[3]]
    # every page points at the feed of all articles
    link = soup(app, "tags/index.html").find("link", attrs={"type": "application/atom+xml"})
    assert local_target(app, "tags/index.html", link["href"]) == app.outdir / "feeds/atom.xml"


@pytest.mark.sphinx("html", testroot="articles", srcdir="articles-feeds", freshenv=True,
                    confoverrides={"suppress_warnings": []})
def test_feeds_asked_for_without_html_baseurl_link_relatively_and_say_so(
        app: SphinxTestApp) -> None:
    app.build()
    found = warnings_of(app)
    assert len(found) == 1 and "set html_baseurl" in found[0], found
    assert "evaldemo_feeds = True" in found[0] and found[0].endswith("[evaldemo.feeds]")
    entries = feed(app, "feeds/atom.xml")
    assert entries and all(e["href"].startswith("../") for e in entries)
    for entry in entries:
        assert (app.outdir / "feeds" / entry["href"]).resolve().is_file()


@pytest.mark.sphinx("html", testroot="articles", srcdir="articles-feeds-auto", freshenv=True,
                    confoverrides={"suppress_warnings": [], "evaldemo_feeds": "auto"})
def test_feeds_auto_without_html_baseurl_are_skipped_silently(app: SphinxTestApp) -> None:
    app.build()
    assert warnings_of(app) == []
    assert "atom feed" not in app.status.getvalue().lower()
    assert not (app.outdir / "feeds").exists()
    assert soup(app, "index.html").find("link", attrs={"type": "application/atom+xml"}) is None


@pytest.mark.sphinx("html", testroot="kp", srcdir="kp-feeds-off", freshenv=True,
                    confoverrides={"evaldemo_feeds": False})
def test_feeds_false_writes_none_even_with_html_baseurl(app: SphinxTestApp) -> None:
    app.build()
    assert warnings_of(app) == []
    assert not (app.outdir / "feeds").exists()


@pytest.mark.parametrize(("wanted", "warned"), [("auto", False), (True, True)])
def test_without_feedgen_auto_is_silent_and_true_says_what_to_install(
        make_app: Callable[..., SphinxTestApp], rootdir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, wanted: Any, warned: bool) -> None:
    import shutil
    for name in [m for m in sys.modules if m == "feedgen" or m.startswith("feedgen.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "feedgen", None)  # import feedgen now fails
    shutil.copytree(rootdir / "test-kp", tmp_path / "kp")
    app = make_app("html", srcdir=tmp_path / "kp", freshenv=True,
                   confoverrides={"evaldemo_feeds": wanted})
    app.build()
    found = warnings_of(app)
    if warned:
        assert len(found) == 1 and "pip install 'sphinx-evaldemo[feeds]'" in found[0], found
        assert found[0].endswith("[evaldemo.feeds]")
    else:
        assert found == []
        assert "atom feed" not in app.status.getvalue().lower()
    assert not (app.outdir / "feeds").exists()
    assert soup(app, "index.html").find("link", attrs={"type": "application/atom+xml"}) is None


# --------------------------------------------------------------------------- beside ABlog


@pytest.mark.sphinx("html", testroot="kp-ablog", freshenv=True)
def test_beside_ablog_nothing_is_listed_twice(app: SphinxTestApp) -> None:
    app.build()
    assert warnings_of(app) == []
    # ABlog's post is ABlog's: its own tag pages, not ours, and no article header
    assert (app.outdir / "blog" / "tag" / "ablog-only.html").is_file()
    assert soup(app, "posts/blogpost.html").select_one("header.evaldemo-article") is None
    assert [a.get_text() for a in soup(app, "tags/shared.html").select(
        ".evaldemo-listing-title a")] == ["A Knowledge Repo article"]
    assert [a.get_text() for a in soup(app, "index.html").select(
        ".evaldemo-listing-title a")] == ["A Knowledge Repo article"]
    # our article is not ABlog's post
    ablog_feed = (app.outdir / "blog" / "atom.xml").read_text(encoding="utf-8")
    assert "An ABlog post" in ablog_feed and "A Knowledge Repo article" not in ablog_feed
    assert [e["title"] for e in feed(app, "feeds/atom.xml")] == ["A Knowledge Repo article"]


@pytest.mark.sphinx("html", testroot="kp-ablog", srcdir="kp-ablog-plain", freshenv=True,
                    confoverrides={"html_baseurl": "", "blog_baseurl": ""},
                    warningiserror=True)
def test_project_with_ablog_and_no_html_baseurl_builds_clean_under_w(
        app: SphinxTestApp) -> None:
    # ABlog brings feedgen; a project that sets no html_baseurl must still pass -W
    app.build()
    assert warnings_of(app) == []
    assert not (app.outdir / "feeds").exists()

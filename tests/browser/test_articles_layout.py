"""Articles in a real browser: the header, ``[TOC]`` and listing cards under every theme.

``tests/roots/test-kp`` (Knowledge Repo posts, no examples, so the builds are quick) is
built once per theme and opened in Debian's Chromium in light and, where the theme has
one, dark mode, wide and narrow. What is asserted is read from the live page: where
things are (boxes), what the theme drew (computed styles, ``::before`` banners), and
axe-core's findings on the article parts. Skipped like ``test_layout.py`` when the browser
or the ``browser`` extra is missing (failing under ``CI=true``).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sphinx.testing.util import SphinxTestApp

from tests.browser.conftest import PACKAGES, missing_packages, require, serve
from tests.browser.test_layout import THEMES, WIDTHS, _violations
from tests.conftest import Build
from tests.helpers import warnings

CASES = [pytest.param(t, m, w, id=f"{t}-{m}-{w}") for t, modes in THEMES.items()
         for m in modes if m != "dark-toggle" for w in WIDTHS]
PAGES = {"toc": "posts/resume-training.kp/knowledge.html", "header": "posts/cpp.html",
         "cards": "index.html"}
EPS = 1.0

#: read from the page: boxes of the parts, the TOC's banners, colours, overflow
FACTS_JS = r"""
() => {
  const box = el => { if (!el) return null; const r = el.getBoundingClientRect();
    return {x: r.left, y: r.top + scrollY, w: r.width, h: r.height,
            r: r.right, b: r.bottom + scrollY}; };
  const style = (el, pseudo) => el ? getComputedStyle(el, pseudo || null) : null;
  const banner = el => [el, ...(el ? el.querySelectorAll("*") : [])].flatMap(n =>
    ["::before", "::after"].map(p => style(n, p).content)).filter(c => c && c !== "none"
    && c !== "normal" && c !== '""');
  const toc = document.querySelector("nav.evaldemo-toc");
  const header = document.querySelector("header.evaldemo-article");
  const tldr = header && header.querySelector(".evaldemo-tldr");
  const rgba = c => (c.match(/[\d.]+/g) || []).map(Number);
  const picture = img => img && {fit: style(img).objectFit, natural: [img.naturalWidth,
    img.naturalHeight]};
  const solid = el => { for (let n = el; n; n = n.parentElement) {
      const c = rgba(style(n).backgroundColor); if (c.length === 3 || c[3] > 0.5) return c; }
    return [255, 255, 255]; };
  return {
    overflow: document.scrollingElement.scrollWidth - innerWidth,
    toc: toc && {box: box(toc), banners: banner(toc), links: toc.querySelectorAll("a").length,
                 visible: style(toc).display !== "none" && style(toc).visibility !== "hidden"},
    text: document.body.innerText,
    header: header && {
      box: box(header), border: parseFloat(style(header).borderBottomWidth),
      thumb: box(header.querySelector("img.evaldemo-thumbnail")),
      thumbFit: picture(header.querySelector("img.evaldemo-thumbnail")),
      meta: box(header.querySelector(".evaldemo-meta")),
      subtitle: box(header.querySelector(".evaldemo-subtitle")),
      chips: [...header.querySelectorAll(".evaldemo-tags .evaldemo-tag")].map(c => ({
        box: box(c), radius: parseFloat(style(c).borderTopLeftRadius),
        bg: rgba(style(c).backgroundColor)})),
      tldr: box(tldr), tldrBorder: parseFloat(style(tldr).borderLeftWidth),
      tldrBg: rgba(style(tldr).backgroundColor),
      tldrColor: rgba(style(tldr).color), pageBg: solid(tldr),
    },
    cards: [...document.querySelectorAll(".evaldemo-listing > .evaldemo-card")].map(card => ({
      box: box(card), thumb: box(card.querySelector("img")),
      thumbFit: picture(card.querySelector("img")),
      pad: [parseFloat(style(card).paddingLeft), parseFloat(style(card).paddingRight)],
      body: box(card.querySelector(".evaldemo-card-body")),
      thumbHref: card.querySelector(".evaldemo-card-thumb a")?.getAttribute("href") ?? null,
      title: box(card.querySelector(".evaldemo-listing-title")),
      titleHref: card.querySelector(".evaldemo-listing-title a")?.getAttribute("href") ?? null,
      tldr: box(card.querySelector(".evaldemo-listing-tldr")),
      tags: box(card.querySelector(".evaldemo-listing-tags"))})),
  };
}
"""


@pytest.fixture(scope="session")
def kp_built(sphinx_build: Build) -> Callable[[str], SphinxTestApp]:
    """``kp_built(theme)``: test-kp built under ``theme`` (once)."""
    require(missing_packages(*PACKAGES))

    @functools.cache
    def build(theme: str) -> SphinxTestApp:
        return sphinx_build("kp", "html", copy=f"kp-{theme}",
                            confoverrides={"html_theme": theme, "html_title": "kb"})

    return build


@pytest.fixture(scope="session")
def kp_server(kp_built: Callable[[str], SphinxTestApp]) -> Iterator[tuple[str, Path]]:
    root = Path(kp_built("alabaster").srcdir).parent
    with serve(root) as base:
        yield base, root


@pytest.fixture(scope="module")
def look(browser: Any, kp_built: Callable[[str], SphinxTestApp],
         kp_server: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
         ) -> Callable[[str, str, int, str], dict[str, Any]]:
    """``look(theme, mode, width, page)``: the page's facts and axe's findings, once each."""
    from axe_playwright_python.base import AXE_SCRIPT

    base, root = kp_server
    shots = tmp_path_factory.mktemp("article-screenshots")

    @functools.cache
    def open_page(theme: str, mode: str, width: int, page_key: str) -> dict[str, Any]:
        app = kp_built(theme)
        url = f"{base}/{Path(app.outdir).relative_to(root).as_posix()}/{PAGES[page_key]}"
        context = browser.new_context(
            viewport={"width": width, "height": WIDTHS[width]},
            color_scheme="dark" if mode == "dark" else "light", reduced_motion="reduce")
        if mode == "dark" and theme != "furo":  # what pydata's and book's toggles store
            context.add_init_script(
                "localStorage.setItem('theme', 'dark'); localStorage.setItem('mode', 'dark');")
        page = context.new_page()
        try:
            page.goto(url, wait_until="load")
            page.evaluate("document.fonts.ready")
            page.screenshot(path=str(shots / f"{theme}-{mode}-{width}-{page_key}.png"),
                            full_page=True, animations="disabled")
            facts: dict[str, Any] = page.evaluate(FACTS_JS)
            page.evaluate(AXE_SCRIPT)
            axe = page.evaluate("""context => axe.run(context, {resultTypes: ["violations"]})""",
                                {"include": [".evaldemo-article", ".evaldemo-listing",
                                             ".evaldemo-toc"]})
        finally:
            context.close()
        facts["axe"] = _violations(axe)
        return facts

    return open_page


def _contrast(a: list[float], b: list[float]) -> float:
    def luminance(c: list[float]) -> float:
        rgb = [v / 255 for v in c[:3]]
        lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", THEMES)
def test_posts_build_warning_free_under_theme(kp_built: Callable[[str], SphinxTestApp],
                                              theme: str) -> None:
    app = kp_built(theme)
    assert warnings(app.warning.getvalue()) == []
    assert (Path(app.outdir) / "_static" / "evaldemo-articles.css").is_file()


@pytest.mark.parametrize(("theme", "mode", "width"), CASES)
def test_toc_shows_no_theme_error(look: Any, theme: str, mode: str, width: int) -> None:
    facts = look(theme, mode, width, "toc")
    toc = facts["toc"]
    assert toc is not None and toc["visible"] and toc["links"] == 5
    assert toc["banners"] == [], toc["banners"]  # Furo's red "ERROR: ..." is a ::before
    assert "ERROR" not in facts["text"]
    assert facts["overflow"] <= EPS


@pytest.mark.parametrize(("theme", "mode", "width"), CASES)
def test_header_reads_like_a_blog(look: Any, theme: str, mode: str, width: int) -> None:
    facts = look(theme, mode, width, "header")
    header = facts["header"]
    assert header["border"] > 0  # set apart from the body
    thumb, meta, tldr = header["thumb"], header["meta"], header["tldr"]
    # the thumbnail: top right, beside the meta line, above the TL;DR
    assert thumb is not None and thumb["w"] > 0
    assert thumb["x"] >= meta["r"] - EPS and abs(thumb["y"] - header["box"]["y"]) <= 24
    assert tldr["y"] >= thumb["b"] - EPS and tldr["y"] >= meta["b"] - EPS
    # the TL;DR is a box: a bar and a tint, text readable on it
    assert header["tldrBorder"] >= 3 and header["tldrBg"][3:] and header["tldrBg"][3] > 0
    assert _contrast(header["tldrColor"], header["pageBg"]) >= 4.5
    # tags are chips: rounded, tinted, on one line when there is room
    chips = header["chips"]
    assert len(chips) == 2
    assert all(c["radius"] > 4 and len(c["bg"]) == 4 and c["bg"][3] > 0 for c in chips)
    assert chips[1]["box"]["x"] > chips[0]["box"]["r"]
    assert facts["overflow"] <= EPS
    assert facts["axe"] == []
    _whole(header["thumbFit"])


def _whole(picture: dict[str, Any]) -> None:
    """The image is shown whole: fitted into its box, never cropped to the box's shape
    (the test posts' thumbnails are not square)."""
    natural = picture["natural"]
    assert natural[0] > 0 and natural[0] != natural[1], natural
    assert picture["fit"] in ("contain", "scale-down"), picture


@pytest.mark.parametrize(("theme", "mode", "width"), CASES)
def test_listing_cards(look: Any, theme: str, mode: str, width: int) -> None:
    facts = look(theme, mode, width, "cards")
    cards = facts["cards"]
    assert len(cards) == 5
    for upper, lower in itertools.pairwise(cards):
        assert lower["box"]["y"] >= upper["box"]["b"] - EPS  # one card after another
    with_thumb = [c for c in cards if c["thumb"] is not None]
    assert with_thumb, "the C++ post has a thumbnail"
    for card in with_thumb:
        # beside the title, in its own card, and a link to the same page
        assert card["thumb"]["r"] <= card["title"]["x"] + EPS
        assert card["thumb"]["y"] < card["title"]["b"] and card["title"]["y"] < card["thumb"]["b"]
        assert card["box"]["y"] - EPS <= card["thumb"]["y"] <= card["box"]["b"]
        assert card["thumbHref"] == card["titleHref"] is not None
        _whole(card["thumbFit"])
    for card in cards:
        # padded on every side, whatever the theme does to docutils containers
        assert min(card["pad"]) >= 8, card["pad"]
        assert card["title"]["x"] >= card["box"]["x"] + 8 - EPS
        assert card["body"]["r"] <= card["box"]["r"] - 8 + EPS
        assert card["tldr"]["y"] >= card["title"]["b"] - EPS
        assert card["tags"]["y"] >= card["tldr"]["b"] - EPS
    assert facts["overflow"] <= EPS
    assert facts["axe"] == []

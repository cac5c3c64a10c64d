"""The panels in a real browser: headless Chromium over pages built under five themes.

Each theme builds ``tests/roots/test-browser`` once (the examples run in the first build
only: every build shares one result cache). The pages are served on 127.0.0.1 and each
theme x mode x width is opened once; what the tests assert is read from the live page
(``facts.js``) and axe-core (bundled by axe-playwright-python, no network). A screenshot
of every theme x mode x width is saved in the session's tmp folder, and also in the
folder named by ``EVALDEMO_SCREENSHOTS`` when that is set (shrunk, for the docs).

The browser is Debian's ``/usr/bin/chromium``, never a downloaded one. Without it (or
without the ``browser`` extra) the tests are skipped, except under ``CI=true``, where
they fail: CI cannot go green without them.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples import render, visual
from tests.browser.conftest import PACKAGES, missing_packages, require, serve
from tests.conftest import Build
from tests.helpers import warnings

#: Modes per theme. "dark" is the reader's system preference (prefers-color-scheme);
#: "dark-toggle" is the theme's own switch (furo: body[data-theme=dark] under a light
#: system). pydata and book have one dark mode: html[data-theme=dark], set as their
#: toggle sets it (localStorage), under a light system preference.
THEMES: dict[str, tuple[str, ...]] = {
    "alabaster": ("light",),
    "furo": ("light", "dark", "dark-toggle"),
    "pydata_sphinx_theme": ("light", "dark"),
    "sphinx_rtd_theme": ("light",),
    "sphinx_book_theme": ("light", "dark"),
}
WIDTHS = {1280: 900, 375: 812}
CASES = [pytest.param(t, m, id=f"{t}-{m}") for t, modes in THEMES.items() for m in modes]
DARK = [pytest.param(t, m, id=f"{t}-{m}") for t, modes in THEMES.items() for m in modes if m != "light"]
SIZES = [pytest.param(w, id=str(w)) for w in WIDTHS]
EPS = 0.5
#: axe looks at the examples; the syntax colours of the highlighted code are the theme's
#: Pygments style (as in every other code block of the site), so their tokens are left out.
AXE_CONTEXT = {"include": [".evaldemo"], "exclude": [".evaldemo-code pre > span"]}
FACTS_JS = (Path(__file__).parent / "facts.js").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def built(
    sphinx_build: Build, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], SphinxTestApp]:
    """``built(theme)``: the test root built under ``theme`` (once), sharing one result cache."""
    require(missing_packages(*PACKAGES))
    cache = tmp_path_factory.mktemp("themes-cache")

    @functools.cache
    def build(theme: str) -> SphinxTestApp:
        return sphinx_build(
            "browser", "html", copy=f"browser-{theme}",
            confoverrides={"html_theme": theme, "evaldemo_cache_dir": str(cache)},
        )

    return build


@pytest.fixture(scope="session")
def server(built: Callable[[str], SphinxTestApp]) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 over the folder holding every build."""
    root = Path(built("alabaster").srcdir).parent
    with serve(root) as base:
        yield base, root


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path | None]:
    local = tmp_path_factory.mktemp("screenshots")
    extra = os.environ.get("EVALDEMO_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
    return local, Path(extra) if extra else None


def _shrink(source: Path, target: Path, width: int) -> None:
    """A small copy for the docs: at most 720 px wide, 256 colours (Pillow when installed)."""
    try:
        from PIL import Image
    except ImportError:
        target.write_bytes(source.read_bytes())
        return
    with Image.open(source) as image:
        scale = min(1.0, (720 if width > 600 else 320) / image.width)
        small = image.convert("RGB").resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
        )
        small.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


@pytest.fixture(scope="session")
def view(
    browser: Any,
    built: Callable[[str], Any],
    server: tuple[str, Path],
    screenshots: tuple[Path, Path | None],
) -> Callable[[str, str, int], dict[str, Any]]:
    """``view(theme, mode, width)``: the page opened once; its facts, axe's findings, screenshots."""
    from axe_playwright_python.base import AXE_SCRIPT

    base, root = server
    local, extra = screenshots

    @functools.cache
    def open_page(theme: str, mode: str, width: int) -> dict[str, Any]:
        app = built(theme)
        url = f"{base}/{Path(app.outdir).relative_to(root).as_posix()}/index.html"
        context = browser.new_context(
            viewport={"width": width, "height": WIDTHS[width]},
            color_scheme="dark" if mode == "dark" and theme == "furo" else "light",
            reduced_motion="reduce",
        )
        if (mode != "light" and theme != "furo") or mode == "dark-toggle":
            # what the theme's own toggle stores: furo reads "theme", pydata/book "mode" and "theme"
            context.add_init_script(
                "localStorage.setItem('theme', 'dark'); localStorage.setItem('mode', 'dark');"
            )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "response",
            lambda response: errors.append(
                f"{response.status} {response.url} (from {response.request.headers.get('referer')})"
            )
            if response.status >= 400 else None,
        )
        try:
            page.goto(url, wait_until="load")
            page.evaluate("document.fonts.ready")
            name = f"{theme}-{mode}-{width}"
            page.screenshot(path=str(local / f"{name}.png"), full_page=True, animations="disabled")
            if extra is not None and mode != "dark-toggle":  # furo's toggle looks the same as "dark"
                # for the docs: the first example with the theme around it, shrunk
                first = page.locator("div.evaldemo").first.bounding_box()
                assert first is not None
                top = max(0, first["y"] + page.evaluate("scrollY") - 90)
                clip = local / f"{name}-first.png"
                page.screenshot(
                    path=str(clip), full_page=True, animations="disabled",
                    clip={"x": 0, "y": top, "width": width, "height": first["height"] + 130},
                )
                _shrink(clip, extra / f"{name}.png", width)
            facts: dict[str, Any] = page.evaluate(FACTS_JS)
            # taken before axe runs: axe re-fetches @import-ed stylesheets itself, resolving
            # them against the page (pydata's theme.css imports "../basic.css": a false 404)
            facts["errors"] = list(errors)
            page.evaluate(AXE_SCRIPT)
            axe = page.evaluate(
                """context => axe.run(context, {resultTypes: ["violations"]})""", AXE_CONTEXT
            )
        finally:
            context.close()
        facts["axe"] = _violations(axe)
        (local / f"{name}.json").write_text(json.dumps(facts, indent=1), encoding="utf-8")
        return facts

    return open_page


def _violations(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": v["id"], "impact": v["impact"], "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]


def _compared(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """The examples that show two panels."""
    found = [ex for ex in facts["examples"] if len(ex["panels"]) == 2]
    assert len(found) >= 4, f"expected the four compared examples on the page, found {len(found)}"
    return found


# --- the builds -------------------------------------------------------------------------


@pytest.mark.parametrize("theme", THEMES)
def test_build_under_theme_is_warning_free(built: Callable[[str], Any], theme: str) -> None:
    app = built(theme)
    assert warnings(app.warning.getvalue()) == []
    assert (Path(app.outdir) / "_static" / "evaldemo.css").is_file()


# --- layout -------------------------------------------------------------------------------


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_page_loads_cleanly(view: Any, theme: str, mode: str, width: int) -> None:
    """No script error, no missing file (the stylesheet, the theme's and the neighbours' assets)."""
    assert view(theme, mode, width)["errors"] == []


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_panels_side_by_side_only_when_both_fit(view: Any, theme: str, mode: str, width: int) -> None:
    """Each panel asks for its content's width: one row when both fit, full width otherwise."""
    beside = []
    for ex in _compared(view(theme, mode, width)):
        first, second = (p["box"] for p in ex["panels"])
        needs = sum(p["need"] for p in ex["panels"]) + ex["panelsGap"]
        if needs <= ex["panelsBox"]["width"] + EPS:
            assert abs(first["top"] - second["top"]) <= 1, (ex["caption"], first, second)
            assert first["right"] <= second["left"] + EPS, f"panels overlap: {first} {second}"
            beside.append(ex["caption"])
        else:
            assert second["top"] >= first["bottom"] - EPS, (ex["caption"], first, second)
            for panel in (first, second):  # each takes the whole column
                assert abs(panel["width"] - ex["panelsBox"]["width"]) <= 1, (ex["caption"], panel)
        for panel in ex["panels"]:  # never narrower than its content asks, nor than the column
            assert panel["box"]["width"] >= min(panel["need"], ex["panelsBox"]["width"]) - 1, panel
    if width == 1280:
        assert "BatchNorm in both modes" in beside  # three columns fit side by side everywhere
        assert "A wide output" not in beside


@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_panels_stack_at_375(view: Any, theme: str, mode: str) -> None:
    for ex in _compared(view(theme, mode, 375)):
        first, second = (p["box"] for p in ex["panels"])
        assert second["top"] >= first["bottom"] - EPS, (ex["caption"], first, second)
        assert abs(first["left"] - second["left"]) <= 1


@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_stacked_grids_line_up_element_by_element(view: Any, theme: str, mode: str) -> None:
    """On a phone, each element of the eval grid sits right under the same element of the
    train grid (same column, same width), a few lines below: the modes stay comparable."""
    checked = 0
    for ex in _compared(view(theme, mode, 375)):
        train, eval_ = ex["grids"]
        if train is None or eval_ is None:
            continue
        assert len(train["cells"]) == len(eval_["cells"])
        for mine, theirs in zip(train["cells"], eval_["cells"], strict=True):
            assert abs(mine["left"] - theirs["left"]) <= 1 and abs(mine["width"] - theirs["width"]) <= 1
        # between them only the train legend, its folded printout and the eval title
        assert 0 < eval_["box"]["top"] - train["box"]["bottom"] <= 170, (ex["caption"], train, eval_)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_nothing_overflows_the_page(view: Any, theme: str, mode: str, width: int) -> None:
    facts = view(theme, mode, width)
    page = facts["page"]
    assert page["scrollWidth"] <= page["innerWidth"], page
    assert page["bodyScrollWidth"] <= page["innerWidth"], page
    for ex in facts["examples"]:
        # a theme may hide page overflow; each example must still fit its column
        assert ex["box"]["left"] >= -EPS and ex["box"]["right"] <= page["innerWidth"] + EPS, ex["box"]
        assert ex["box"]["right"] <= ex["parentBox"]["right"] + EPS, (ex["box"], ex["parentBox"])
        assert not any(p["overflows"] for p in ex["panels"]), ex["panels"]
        # nothing inside sticks out of its column, or is clipped, without a box that scrolls
        assert ex["unclipped"] == [], (ex["caption"], ex["unclipped"])


def _options(source: str) -> list[dict[str, str]]:
    """Each example's options, in page order."""
    found = []
    for block in source.split("```{evaldemo}")[1:]:
        lines = block.split("\n\n", 1)[0].splitlines()
        found.append(dict(line[1:].split(": ", 1) for line in lines if line.startswith(":")))
    return found


OPTIONS = _options((Path(__file__).parents[1] / "roots" / "test-browser" / "index.md").read_text(encoding="utf-8"))


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_input_line_is_shown_under_the_code(view: Any, theme: str, mode: str, width: int) -> None:
    examples = view(theme, mode, width)["examples"]
    assert len(examples) == len(OPTIONS)
    for ex, options in zip(examples, OPTIONS, strict=True):
        line = ex["inputLine"]
        assert line is not None and line["shown"] and line["afterCode"] and line["python"], line
        assert line["text"] == f"input = {options['input']}  # seed {options.get('seed', '0')}"
        # the whole line is on screen, or its box scrolls (and takes focus)
        assert line["fits"] or (line["overflowX"] in ("auto", "scroll") and line["focusable"]), line


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_two_by_six_grid_is_whole_or_visibly_scrolls(view: Any, theme: str, mode: str, width: int) -> None:
    (ex,) = [ex for ex in view(theme, mode, width)["examples"] if ex["caption"] == "Two rows of six"]
    for grid in ex["grids"]:
        assert grid is not None and (grid["rows"], grid["columns"]) == (2, 6)
        assert grid["printoutFolded"]  # one form per value: the grid, its printout folded
        assert not grid["scrolls"], grid  # it wraps into blocks of columns instead


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_code_and_outputs_scroll_in_their_own_box(
    view: Any, theme: str, mode: str, width: int
) -> None:
    facts = view(theme, mode, width)
    scrollers = [s for ex in facts["examples"] for s in ex["scrollers"]]
    assert not [s["what"] for s in scrollers if not s["contained"]]
    scrolling = [s for s in scrollers if s["scrolls"]]
    assert not [s["what"] for s in scrolling if s["overflowX"] not in ("auto", "scroll")]
    # the wide example's 1000-character lines scroll at every width
    assert any("a long line with no break" in s["what"] for s in scrolling), scrollers
    assert any("tensor([[" in s["what"] for s in scrolling), scrollers


# --- marks, contrast ------------------------------------------------------------------------


@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_differing_elements_carry_one_mark_and_one_style(view: Any, theme: str, mode: str) -> None:
    facts = view(theme, mode, 1280)
    marked = [cell for ex in facts["examples"] for cell in ex["marked"]]
    kinds = {cell["kind"] for cell in marked}
    assert kinds == {"differs", "zeroed"}, kinds  # dropout zeroes, batchnorm shifts
    for cell in marked:
        assert cell["glyph"] == ("\u2298" if cell["kind"] == "zeroed" else "\u2022"), cell
        assert cell["glyphShown"] and cell["glyphHidden"] == "true", cell
        assert cell["srText"] and (".train()" in cell["srText"] or ".eval()" in cell["srText"]), cell
        # one style each and a tint: no underline, no hatching
        assert cell["decoration"] == "none" and cell["backgroundImage"] == "none", cell
        assert cell["backgroundColor"] not in ("transparent", "rgba(0, 0, 0, 0)"), cell
        # the glyph reads as what it is (at least 0.9 of the text's size)
        assert cell["markPx"] >= 0.9 * cell["textPx"] - 0.1, cell
        if cell["kind"] == "differs":
            assert cell["fontWeight"] >= 600 and cell["fontStyle"] == "normal", cell
        else:
            assert cell["fontStyle"] == "italic" and cell["fontWeight"] < 600, cell
    for ex in facts["examples"]:
        assert ex["gridMismatches"] == [], (ex["caption"], ex["gridMismatches"])
        # the modes' own colours name the modes only
        assert not set(ex["markColours"]) & set(ex["modeColours"]), (ex["markColours"], ex["modeColours"])
        for grid in ex["grids"]:
            if grid is None:
                continue
            # the legend names exactly the marks on screen ("all differ" is the sentence's)
            assert set(grid["legendKinds"]) == set(grid["markedKinds"]), (ex["caption"], grid)
    (batchnorm,) = [ex for ex in facts["examples"] if ex["caption"] == "BatchNorm in both modes"]
    assert batchnorm["allDiffer"] and batchnorm["marked"] == []


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_chart_is_readable(view: Any, theme: str, mode: str, width: int) -> None:
    charts = [(ex, chart) for ex in view(theme, mode, width)["examples"] for chart in ex["charts"]]
    assert len(charts) >= 1  # the chart belongs to :details: full
    assert {ex["caption"] for ex, _ in charts} == {"Dropout, every fact"}
    for ex, chart in charts:
        assert chart["svg"]["width"] >= min(320, chart["column"]) - 1, chart
        assert len(chart["ticks"]) >= 4 and chart["tickPx"] >= 10, chart  # both axes, legible
        assert "0" in chart["ticks"] or all(not t.startswith("-") for t in chart["ticks"])
        assert all(len(t.lstrip("-").replace(".", "")) <= 3 for t in chart["ticks"]), chart  # round values
        assert chart["key"], chart
        # the caption gives the counts in words; the drawing's label also says where each lies
        assert chart["captionText"].startswith("Train against eval, element by element"), chart
        assert chart["label"].startswith("Train output plotted against eval output"), chart
        caption, svg = chart["caption"], chart["svg"]
        beside = caption["left"] >= svg["right"] - EPS and caption["left"] - svg["right"] <= 40
        below = caption["top"] >= svg["bottom"] - EPS and caption["top"] - svg["bottom"] <= 40
        assert beside or below, (ex["caption"], svg, caption)
    # dropout after ReLU: many elements at (0, 0), drawn once and counted
    dropout = [c for ex, c in charts if ex["caption"] == "Dropout, every fact"]
    assert dropout and any(count.startswith("\u00d7") for count in dropout[0]["counts"])
    assert any("N elements on the same spot" in item for item in dropout[0]["key"])


@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_claims_are_badges(view: Any, theme: str, mode: str) -> None:
    (ex,) = [ex for ex in view(theme, mode, 1280)["examples"] if ex["caption"] == "Dropout in both modes"]
    assert [(c["text"], c["held"]) for c in ex["claims"]] == [
        ("differ holds", True), ("eval-deterministic holds", True)]
    assert all(c["shown"] and c["icon"] == '"\u2713"' for c in ex["claims"]), ex["claims"]


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_text_contrast(view: Any, theme: str, mode: str, width: int) -> None:
    facts = view(theme, mode, width)
    assert sum(ex["checkedText"] for ex in facts["examples"]) > 50
    low = [item for ex in facts["examples"] for item in ex["lowContrast"]]
    assert low == [], low
    marks = [item for ex in facts["examples"] for item in ex["chartMarks"]]
    assert marks and all(m["ratio"] >= 3 for m in marks), marks


@pytest.mark.parametrize(("theme", "mode"), DARK)
def test_dark_mode_is_dark(view: Any, theme: str, mode: str) -> None:
    page = view(theme, mode, 1280)["page"]
    assert page["backgroundLuminance"] < 0.05, page
    if theme == "furo":
        assert page["bodyTheme"] == ("dark" if mode == "dark-toggle" else "auto"), page
        assert page["prefersDark"] == (mode == "dark"), page
    else:
        assert page["htmlTheme"] == "dark", page


# --- coexistence, accessibility ----------------------------------------------------------


@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_copybutton_and_design_coexist(view: Any, theme: str, mode: str) -> None:
    facts = view(theme, mode, 1280)
    buttons = [b for ex in facts["examples"] for b in ex["copyButtons"]]
    assert len(buttons) >= 8 and all(b["contained"] for b in buttons), buttons
    # the example inside the sphinx-design tab is laid out like the others
    assert any(ex["caption"] is None and len(ex["panels"]) == 2 for ex in facts["examples"])


@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_panels_are_labelled_regions(view: Any, theme: str, mode: str) -> None:
    for ex in _compared(view(theme, mode, 1280)):
        assert [p["tag"] for p in ex["panels"]] == ["section", "section"]
        train, eval_ = (p["label"] for p in ex["panels"])
        name = ex["panels"][0]["title"].removesuffix(".train()")  # the model's own name
        assert train.startswith(f"{name}.train() output") and eval_.startswith(f"{name}.eval() output")
        assert train != eval_
        assert [p["title"] for p in ex["panels"]] == [f"{name}.train()", f"{name}.eval()"]


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize(("theme", "mode"), CASES)
def test_axe_finds_no_serious_violation(view: Any, theme: str, mode: str, width: int) -> None:
    """axe-core over the examples (the themes' own chrome is not ours to fix)."""
    found = view(theme, mode, width)["axe"]
    serious = [v for v in found if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)


# --- the teaching figure: its room, its grids in every theme ------------------------------

#: Heights (px) a compared block may take in furo: code, input line, sentence, panels, notes.
BUDGETS = [
    pytest.param("An MLP in both modes", 1280, 800, id="mlp-1280"),
    pytest.param("An MLP in both modes", 375, 960, id="mlp-375"),
    pytest.param("Dropout on a tensor of ones", 1280, 600, id="quickstart-1280"),
]


def _example(facts: dict[str, Any], caption: str) -> dict[str, Any]:
    (found,) = [ex for ex in facts["examples"] if ex["caption"] == caption]
    return found


@pytest.mark.parametrize(("caption", "width", "budget"), BUDGETS)
def test_compact_block_fits_its_height_budget_in_furo(view: Any, caption: str, width: int, budget: int) -> None:
    ex = _example(view("furo", "light", width), caption)
    assert ex["charts"] == []  # the chart belongs to :details: full
    assert ex["box"]["height"] <= budget, (caption, width, ex["box"]["height"])


GRIDDED = ("Mixed widths", "An MLP in both modes", "Three rows of twenty", "Two rows of six")


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize("theme", THEMES)
def test_grid_cells_are_one_size_and_line_up_in_every_theme(view: Any, theme: str, width: int) -> None:
    """Values of 6 and 7 characters (negative ones) get cells of one width, the same in
    both modes and in every theme (a border-box theme must not make a 7-character cell
    grow), and each eval cell sits where its train cell sits."""
    facts = view(theme, "light", width)
    for caption in GRIDDED:
        ex = _example(facts, caption)
        train, eval_ = ex["grids"]
        assert train is not None and eval_ is not None, caption
        widths = [cell["width"] for grid in (train, eval_) for cell in grid["cells"]]
        assert max(widths) - min(widths) <= 0.5, (theme, caption, min(widths), max(widths))
        # the width the extension counts with: (characters + padding) of the grid's font
        chars = widths[0] / (train["gridFontSize"] * visual.CH)
        assert abs(chars - (7 + visual.CELL_PAD)) <= 0.05 * (7 + visual.CELL_PAD), (theme, caption, chars)
        for mine, theirs in zip(train["cells"], eval_["cells"], strict=True):
            assert abs((mine["left"] - train["box"]["left"]) - (theirs["left"] - eval_["box"]["left"])) <= 1
        assert not train["scrolls"] and not eval_["scrolls"], caption


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize("theme", THEMES)
def test_three_by_twenty_wraps_into_aligned_blocks_without_scrolling(view: Any, theme: str, width: int) -> None:
    ex = _example(view(theme, "light", width), "Three rows of twenty")
    train, eval_ = ex["grids"]
    assert (train["rows"], train["columns"]) == (3, 20)
    indices = [index for block in train["blocks"] for index in block["indices"]]
    assert indices == [str(i) for i in range(20)]  # every column named once, in order
    for grid in (train, eval_):
        assert not grid["scrolls"]
        for block in grid["blocks"]:
            assert block["box"]["right"] <= grid["panelBox"]["right"] + EPS, (theme, width, block)
    for mine, theirs in zip(train["blocks"], eval_["blocks"], strict=True):
        assert abs((mine["box"]["left"] - train["box"]["left"]) - (theirs["box"]["left"] - eval_["box"]["left"])) <= 1
        assert abs((mine["box"]["top"] - train["box"]["top"]) - (theirs["box"]["top"] - eval_["box"]["top"])) <= 1


@pytest.mark.parametrize("theme", THEMES)
def test_the_width_estimate_is_within_5_percent_of_the_rendered_grid(view: Any, theme: str) -> None:
    """The side-by-side decision is made from an estimate: it must match what the browser draws."""
    checked = 0
    for ex in view(theme, "light", 1280)["examples"]:
        for panel, grid in zip(ex["panels"], ex["grids"], strict=True):
            if grid is None or not grid["printoutFolded"]:
                continue
            tops = {round(block["box"]["top"]) for block in grid["blocks"]}
            if len(tops) != 1:
                continue  # wrapped: the estimate is of the unwrapped grid
            drawn = grid["blocks"][-1]["box"]["right"] - grid["blocks"][0]["box"]["left"]
            estimate = panel["need"] - render.PANEL_EM * grid["fontSize"]
            if estimate <= 12 * grid["fontSize"] - render.PANEL_EM * grid["fontSize"] + 1:
                continue  # the floor of 12 em, not the grid, decides
            assert abs(estimate - drawn) <= 0.05 * drawn, (theme, ex["caption"], estimate, drawn)
            checked += 1
    assert checked >= 4


@pytest.mark.parametrize("theme", [t for t in THEMES if t != "alabaster"])
def test_mlp_panels_sit_side_by_side_at_1280(view: Any, theme: str) -> None:
    """Where both fit (alabaster's 660 px column at 17 px text holds one, and stacks them)."""
    ex = _example(view(theme, "light", 1280), "An MLP in both modes")
    first, second = (p["box"] for p in ex["panels"])
    assert abs(first["top"] - second["top"]) <= 1, (theme, first, second)

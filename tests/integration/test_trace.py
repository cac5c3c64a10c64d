"""Where the modes part, on real pages: text, HTML and LaTeX builds of the trace root."""

from __future__ import annotations

import re

import pytest
import torch
from bs4 import BeautifulSoup, Tag
from sphinx.testing.util import SphinxTestApp
from torch import nn

from tests.conftest import Build
from tests.helpers import flat, sections, seed_all, warnings

BATCHNORM_MLP = "nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 2))"


@pytest.fixture(scope="module")
def builds(sphinx_build: Build) -> dict[str, SphinxTestApp]:
    """The text build runs the examples; HTML and LaTeX reuse its results."""
    return {name: sphinx_build("trace", name) for name in ("text", "html", "latex")}


@pytest.fixture(scope="module")
def page(builds: dict[str, SphinxTestApp]) -> dict[str, str]:
    return sections((builds["text"].outdir / "index.txt").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def soup(builds: dict[str, SphinxTestApp]) -> BeautifulSoup:
    return BeautifulSoup((builds["html"].outdir / "index.html").read_text(encoding="utf-8"), "html.parser")


def layer_figures() -> list[tuple[str, str, str]]:
    """``(name, largest, share)`` per leaf of the BatchNorm MLP, computed here with torch."""
    seed_all(0)
    net = eval(BATCHNORM_MLP, {"nn": nn})  # the page's model, built the same way
    x = torch.randn(4, 6)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    found: dict[str, list[torch.Tensor]] = {"train": [], "eval": []}
    for mode in ("train", "eval"):
        net.load_state_dict(state)
        net.train(mode == "train")
        hooks = [layer.register_forward_hook(
            lambda _m, _a, out, mode=mode: found[mode].append(out.detach().clone()))
            for layer in net]
        seed_all(0)
        net(x.clone())
        for hook in hooks:
            hook.remove()
    rows = []
    for index, (a, b) in enumerate(zip(found["train"], found["eval"], strict=True)):
        differs = a != b
        largest = float((a - b).abs()[differs].max()) if differs.any() else 0.0
        count = int(differs.sum())
        share = f"{count} of {a.numel()} ({100 * count / a.numel():.0f}%)" if count else "none"
        rows.append((f'"net[{index}]"', f"{largest:.4g}", share))
    return rows


def table_rows(text: str) -> list[list[str]]:
    """The first line of each body row of the text builder's grid table."""
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith('| "') or line.startswith("| …")
    ]


def test_builds_are_clean(builds: dict[str, SphinxTestApp]) -> None:
    for app in builds.values():
        assert app.statuscode == 0
        assert warnings(app.warning.getvalue()) == []


def test_text_names_the_parting_and_its_figures_equal_torchs(page: dict[str, str]) -> None:
    section = page["batchnorm-mlp"]
    text = flat(section)
    assert 'Train and eval first differ at "net[1]".' in text
    assert "Layer by layer: 5 layer calls, 4 with different outputs in train and eval" in text
    rows = table_rows(section)
    assert [(row[0], row[2], row[3]) for row in rows] == layer_figures()
    assert [row[4] for row in rows] == [  # the first line of each note (the cells wrap)
        "", "first differs", "inputs differ", "inputs differ", "inputs differ"]


@pytest.mark.parametrize(
    ("section", "parting"),
    [
        ("lazy", '"net[1]".'),  # named once, by its sentence
        ("hostile-repr", '"net[1]".'),
    ],
)
def test_each_model_parts_where_its_mode_is_read(page: dict[str, str], section: str, parting: str) -> None:
    assert f"Train and eval first differ at {parting}" in flat(page[section])


def test_a_single_layer_is_named_by_its_sentence(page: dict[str, str]) -> None:
    text = flat(page["rrelu"])
    assert ('"net" (RReLU, lower=0.1, upper=0.3) multiplied its 8 negative inputs by random slopes '
            "from") in text
    assert "eval mode uses the fixed mean slope 0.2." in text
    assert "Train and eval first differ" not in text  # one layer: its sentence says it


def test_spectral_norm_is_equal_up_to_rounding_and_does_not_part(page: dict[str, str]) -> None:
    """Train's power iteration moves the weight by a unit in the last place: rounding, not a
    difference, in the outputs and in the parametrization's row alike."""
    text = flat(page["spectral-norm"])
    assert "The train and eval outputs are equal up to rounding (largest difference" in text
    assert "first differ" not in text
    (row,) = table_rows(page["spectral-norm"])
    assert row[3] == "none" and row[4].startswith("equal up to")  # the cell wraps


def test_a_deep_model_shows_the_parting_and_a_capped_table(page: dict[str, str]) -> None:
    section = page["deep"]
    assert 'Train and eval first differ at "net[300]".' in flat(section)
    rows = table_rows(section)
    assert rows[0][0] == "… 297"  # "earlier calls" on the cell's next line
    assert [row[0] for row in rows[1:5]] == ['"net[297]"', '"net[298]"', '"net[299]"', '"net[300]"']
    assert len(rows) == 1 + 24 + 1
    assert rows[-1][0] == "… 280 more"  # "calls" on the cell's next line
    lines = section.splitlines()
    last = next(i for i, line in enumerate(lines) if line.startswith("| … 280"))
    cell = " ".join(line.split("|")[4].strip() for line in lines[last:] if line.startswith("|"))
    assert re.fullmatch(r"280 of them differ, largest difference [0-9.e-]+", cell), cell


def test_the_functional_dropout_pitfall_gets_a_note(page: dict[str, str]) -> None:
    text = flat(page["pitfall"])
    assert "The train and eval outputs are equal." in text
    assert ('Note: In eval mode a second pass gave different values; the first module whose '
            'output varied is "net" (Head). Its code does not read the mode') in text
    assert "Mode-dependent layers: none found." in text


def _comparison(soup: BeautifulSoup, section: str) -> Tag:
    found = soup.find("section", id=section)
    assert isinstance(found, Tag)
    box = found.select_one("div.evaldemo-comparison")
    assert box is not None
    return box


def test_html_shows_the_table_under_its_title(soup: BeautifulSoup) -> None:
    box = _comparison(soup, "batchnorm-mlp")
    assert box.find("details") is None  # shown, not folded
    title = box.select_one("p.evaldemo-trace-title")
    assert title is not None
    assert title.get_text() == "Layer by layer: 5 layer calls, 4 with different outputs in train and eval"
    rows = box.select("table.evaldemo-trace-table tbody tr")
    assert [row.find("td").get_text(strip=True) for row in rows] == [f"net[{i}]" for i in range(5)]
    assert [i for i, row in enumerate(rows) if "evaldemo-parts" in row["class"]] == [1]


@pytest.mark.parametrize("section", ["batchnorm-mlp", "deep", "hostile-repr", "spectral-norm"])
def test_html_table_matches_the_text_builders_table(
    soup: BeautifulSoup, page: dict[str, str], section: str
) -> None:
    """One docutils table for every builder: HTML and text show the same cells (text quotes
    the module names)."""
    box = _comparison(soup, section)
    cells = [[cell.get_text() for cell in row.find_all("td")]
             for row in box.select("table.evaldemo-trace-table tbody tr")]
    text_rows = table_rows(page[section])
    assert len(cells) == len(text_rows)
    for html_row, text_row in zip(cells, text_rows, strict=True):
        # the text table wraps a long cell over lines: its first line starts the HTML cell
        text_row[0] = text_row[0].removeprefix('"').removesuffix('"')
        assert len(html_row) == len(text_row) == 5
        for html_cell, text_cell in zip(html_row, text_row, strict=True):
            assert html_cell.startswith(text_cell.split('"')[0]), (html_row, text_row)
    assert [th.get_text() for th in box.select("table.evaldemo-trace-table thead th")][:2] == ["layer", "module"]
    assert box.find("script") is None


def test_html_module_names_carry_the_full_repr(soup: BeautifulSoup) -> None:
    box = _comparison(soup, "hostile-repr")
    codes = [code for code in box.find_all("code") if code.has_attr("title")]
    assert {code.get_text() for code in codes} == {"net[1]"}
    assert {code["title"] for code in codes} == {'Sneaky(p="<script>alert(1)</script>" & more)'}
    assert box.find("script") is None


def test_latex_carries_the_trace(builds: dict[str, SphinxTestApp]) -> None:
    tex = next(builds["latex"].outdir.glob("*.tex")).read_text(encoding="utf-8")
    start = tex.find("batchnorm\\sphinxhyphen{}mlp")
    chunk = tex[start:tex.find("rrelu", start)]
    assert "Layer by layer: 5 layer calls, 4 with different outputs in train and eval" in chunk
    assert "first differs here" in chunk
    figures = layer_figures()
    for name, largest, _ in figures:
        assert name.strip('"').replace("[", "{[}").replace("]", "{]}") in chunk
        assert largest in chunk
    assert re.search(r"\\begin\{tabular", chunk) or re.search(r"\\begin\{tabulary", chunk)

"""visual: marked element grids, the train-against-eval chart (ticks, counts, key) and its
text alternative, the summary of a large tensor, and escaping. Pure functions over TensorView data."""

from __future__ import annotations

import math

import pytest
from bs4 import BeautifulSoup

from sphinx_evaldemo.examples import visual
from sphinx_evaldemo.examples.model import TensorView


def view(values: tuple[float, ...] | None, shape: tuple[int, ...] | None = None,
         dtype: str = "float32", path: str = "output") -> TensorView:
    shape = (len(values),) if shape is None and values is not None else shape
    assert shape is not None
    finite = [v for v in values or () if math.isfinite(v)]
    return TensorView(
        path=path, shape=shape, dtype=dtype, values=values,
        mean=sum(finite) / len(finite) if finite else None, std=None,
        min=min(finite) if finite else None, max=max(finite) if finite else None,
        zeros=sum(v == 0 for v in values or ()) / max(1, len(values or ())),
    )


TRAIN = view((0.0, 2.0, 1.0, 4.0), (2, 2))
EVAL = view((0.5, 1.0, 1.0, 2.0), (2, 2))


def cells(grid: visual.Grid | None) -> list[list[tuple[str, list[str]]]]:
    """``[[(text, classes), ...] per row]`` of the grid's table, as its HTML shows it."""
    assert grid is not None
    table = BeautifulSoup(visual.grid_html(grid), "html.parser").select_one("table.evaldemo-grid")
    assert table is not None
    return [
        [(td.get_text(), [str(c) for c in td.get_attribute_list("class") if c]) for td in tr.find_all("td")]
        for tr in table.find_all("tr")
    ]


def legend(grid: visual.Grid) -> str:
    found = BeautifulSoup(visual.grid_html(grid), "html.parser").select_one("p.evaldemo-legend")
    return found.get_text() if found is not None else ""


def test_grid_marks_differing_and_zeroed_cells_with_glyph_and_class() -> None:
    grid = visual.element_grid(TRAIN, EVAL, "train", "eval")
    assert cells(grid) == [
        [(f"0.0000{visual.ZEROED} (zero in model.train(), 0.5000 in model.eval())", ["evaldemo-zeroed"]),
         (f"2.0000{visual.DIFFERS} (model.eval() gives 1.0000)", ["evaldemo-differs"])],
        [("1.0000", []),
         (f"4.0000{visual.DIFFERS} (model.eval() gives 2.0000)", ["evaldemo-differs"])],
    ]
    assert grid is not None
    soup = BeautifulSoup(visual.grid_html(grid), "html.parser")
    # the glyph is decoration for sight; the words are there for screen readers
    marks = soup.select("span.evaldemo-mark")
    assert [m.get_text() for m in marks] == [visual.ZEROED, visual.DIFFERS, visual.DIFFERS]
    assert all(m["aria-hidden"] == "true" for m in marks)
    zeroed = soup.select_one("td.evaldemo-zeroed")
    assert zeroed is not None
    assert zeroed["title"] == "zero in model.train(), 0.5000 in model.eval()"
    assert legend(grid) == (f"{visual.DIFFERS} differs from model.eval() "
                            f"{visual.ZEROED} zero here, not in model.eval()")


def test_legend_lists_only_the_marks_on_screen() -> None:
    grid = visual.element_grid(EVAL, TRAIN, "eval", "train")
    assert grid is not None
    assert [c for row in cells(grid) for _, c in row] == [
        ["evaldemo-differs"], ["evaldemo-differs"], [], ["evaldemo-differs"]]
    assert legend(grid) == f"{visual.DIFFERS} differs from model.train()"
    assert visual.ZEROED not in visual.grid_html(grid)


def test_all_differ_is_said_once_instead_of_marking_every_cell() -> None:
    grid = visual.element_grid(view((1.0, 2.0, 3.0, 4.0), (2, 2)), view((0.5, 1.0, 1.5, 2.0), (2, 2)),
                               "train", "eval")
    assert grid is not None and grid.all_differ
    assert [c for row in cells(grid) for _, c in row] == [[], [], [], []]
    assert legend(grid) == ""  # the sentence above the panels says every value differs
    assert visual.DIFFERS not in visual.grid_html(grid)
    # the other mode's value is still one hover away
    soup = BeautifulSoup(visual.grid_html(grid), "html.parser")
    assert soup.find_all("td")[0]["title"] == "model.eval() gives 0.5000"


def test_all_differ_keeps_the_zeroed_marks() -> None:
    grid = visual.element_grid(view((0.0, 2.0)), view((1.0, 1.0)), "train", "eval")
    assert grid is not None and grid.all_differ
    assert [c for row in cells(grid) for _, c in row] == [["evaldemo-zeroed"], []]
    assert legend(grid) == f"{visual.ZEROED} zero here, not in model.eval()"


def test_both_modes_grids_share_a_column_width() -> None:
    train = visual.element_grid(view((0.0, 12.5)), view((-3.25, 1.0)), "train", "eval")
    eval_ = visual.element_grid(view((-3.25, 1.0)), view((0.0, 12.5)), "eval", "train")
    assert train is not None and eval_ is not None
    assert train.width == eval_.width == len("-3.2500")
    assert "--evaldemo-cell: 7ch" in visual.grid_html(train)


def test_one_dimensional_tensor_is_one_row() -> None:
    (row,) = cells(visual.element_grid(view((1.0, 0.0, 3.0)), view((1.0, 5.0, 3.0)), "train", "eval"))
    assert [c for _, c in row] == [[], ["evaldemo-zeroed"], []]


def test_integer_values_print_as_integers() -> None:
    (row,) = cells(visual.element_grid(view((1.0, 2.0), dtype="int64"), view((1.0, 3.0), dtype="int64"),
                                       "train", "eval"))
    assert row[0] == ("1", [])
    assert row[1][0].startswith("2")
    assert "model.eval() gives 3" in row[1][0]


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        pytest.param(TRAIN, TRAIN, id="nothing-differs"),
        pytest.param(view((1.0, math.nan)), view((1.0, math.nan)), id="nan-equals-nan"),
        pytest.param(TRAIN, view((0.5, 1.0, 1.0, 2.0)), id="shapes-differ"),
        pytest.param(view(None, (100,)), view(None, (100,)), id="no-values"),
        pytest.param(view(tuple(float(i) for i in range(65))), view(tuple(0.0 for _ in range(65))),
                     id="65-elements"),
        pytest.param(view((1.0,) * 8, (2, 2, 2)), view((2.0,) * 8, (2, 2, 2)), id="three-dims"),
    ],
)
def test_no_grid(mine: TensorView, theirs: TensorView) -> None:
    assert visual.element_grid(mine, theirs, "train", "eval") is None


def test_grid_up_to_64_elements() -> None:
    grid = visual.element_grid(view((1.0,) * 64, (8, 8)), view((2.0,) * 64, (8, 8)), "train", "eval")
    assert grid is not None
    soup = BeautifulSoup(visual.grid_html(grid), "html.parser")
    assert len(soup.select("td")) == 64


@pytest.mark.parametrize(
    ("columns", "width", "blocks"),
    [
        pytest.param(4, 7, [[0, 1, 2, 3]], id="fits-one-block-no-indices"),
        pytest.param(6, 7, [[0, 1, 2, 3], [4, 5]], id="six-of-seven-characters"),
        pytest.param(20, 7, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15],
                             [16, 17, 18, 19]], id="twenty"),
        pytest.param(8, 1, [[0, 1, 2, 3, 4, 5, 6, 7]], id="narrow-integers"),
    ],
)
def test_wide_grid_wraps_into_blocks_of_columns_with_their_indices(
    columns: int, width: int, blocks: list[list[int]]
) -> None:
    big = "1" * width if width < 6 else "-1." + "0" * (width - 3)
    value = float(big)
    mine = view(tuple(value for _ in range(columns * 3)), (3, columns),
                dtype="int64" if width < 6 else "float32")
    theirs = view(tuple(value + 1 for _ in range(columns * 3)), (3, columns),
                  dtype="int64" if width < 6 else "float32")
    grid = visual.element_grid(mine, theirs, "train", "eval")
    assert grid is not None and grid.width == width
    soup = BeautifulSoup(visual.grid_html(grid), "html.parser")
    tables = soup.select("table.evaldemo-grid")
    indices = [[int(th.get_text()) for th in table.select("thead th")] for table in tables]
    assert indices == (blocks if len(blocks) > 1 else [[]])
    assert [len(table.select("tbody tr")) for table in tables] == [3] * len(blocks)
    assert [len(table.select("tbody tr")[0].find_all("td")) for table in tables] == [len(b) for b in blocks]


def test_negative_zero_prints_as_zero() -> None:
    (row,) = cells(visual.element_grid(view((-0.0, 1.0)), view((-0.5, 1.0)), "train", "eval"))
    assert row[0][0].startswith("0.0000") and "-0.0000" not in row[0][0]


def test_grid_escapes_labels() -> None:
    evil = '<script>alert("x")</script>'
    grid = visual.element_grid(TRAIN, EVAL, evil, evil)
    assert grid is not None
    html = visual.grid_html(grid)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert BeautifulSoup(html, "html.parser").find("script") is None


def drawn_chart(train: TensorView, eval_: TensorView) -> tuple[visual.Chart, BeautifulSoup]:
    drawn = visual.chart(train, eval_)
    assert drawn is not None
    return drawn, BeautifulSoup(visual.chart_html(drawn, drawn.text), "html.parser")


def test_chart_counts_equal_zeroed_and_other() -> None:
    train = view((0.0, 2.0, 1.0, 4.0, 0.0, math.nan))
    eval_ = view((0.5, 1.0, 1.0, 2.0, 0.0, 3.0))
    drawn, soup = drawn_chart(train, eval_)
    # the NaN pair is left out: five elements plotted
    assert drawn.text == (
        "Train output plotted against eval output, 5 elements: 2 equal (on the diagonal), "
        "1 zero in train mode only (on the horizontal zero line), 2 otherwise different."
    )
    chart = soup.select_one("svg.evaldemo-chart")
    assert chart is not None
    assert chart["role"] == "img"
    assert chart["aria-label"] == drawn.text
    assert len(soup.select("svg.evaldemo-chart circle.evaldemo-pt-equal")) == 2
    assert len(soup.select("svg.evaldemo-chart rect.evaldemo-pt-zeroed")) == 1
    assert len(soup.select("svg.evaldemo-chart path.evaldemo-pt-differs")) == 2
    assert soup.select_one("line.evaldemo-diagonal") is not None
    caption = soup.select_one("figcaption p.evaldemo-chart-text")
    assert caption is not None and caption.get_text() == drawn.text


def test_chart_is_at_least_320_pixels_wide() -> None:
    _, soup = drawn_chart(TRAIN, EVAL)
    chart = soup.select_one("svg.evaldemo-chart")
    assert chart is not None
    assert float(str(chart["width"])) >= 320 and float(str(chart["height"])) >= 300


@pytest.mark.parametrize(
    ("train", "eval_", "ticks"),
    [
        pytest.param(view((-3.0, 0.0, 5.0)), view((-1.0, 2.0, 5.0)), ["-2", "0", "2", "4"], id="round-with-0"),
        pytest.param(view((1.0, 2.0)), view((1.5, 4.0)), ["1", "2", "3", "4"], id="no-zero-in-range"),
        pytest.param(view((-0.458, 0.1)), view((0.318, 0.0)), ["-0.4", "-0.2", "0", "0.2"], id="raw-values"),
    ],
)
def test_chart_ticks_at_round_values_on_both_axes(
    train: TensorView, eval_: TensorView, ticks: list[str]
) -> None:
    _, soup = drawn_chart(train, eval_)
    labels = [t.get_text() for t in soup.select("text.evaldemo-tick-label")]
    assert sorted(labels, key=float) == sorted(ticks * 2, key=float)  # x axis and y axis
    axes = [t.get_text() for t in soup.select("text.evaldemo-axis-label")]
    assert axes == ["eval value", "train value"]


def test_coincident_points_are_counted() -> None:
    # dropout's zeroed elements of a ReLU output: many (0, 0) pairs on one spot
    train = view((0.0,) * 6 + (2.0, 0.0, 4.0))
    eval_ = view((0.0,) * 6 + (1.0, 1.5, 2.0))
    drawn, soup = drawn_chart(train, eval_)
    assert sum(point.count for point in drawn.points) == 9
    equal = [p for p in drawn.points if p.kind == "equal"]
    assert [(p.eval, p.train, p.count) for p in equal] == [(0.0, 0.0, 6)]
    assert [t.get_text() for t in soup.select("text.evaldemo-count")] == ["\u00d76"]
    assert len(soup.select("svg.evaldemo-chart circle")) == 1


def test_chart_key_names_only_the_shapes_drawn() -> None:
    _, soup = drawn_chart(view((1.0, 2.0)), view((1.0, 3.0)))
    key = [li.get_text(" ", strip=True) for li in soup.select("ul.evaldemo-chart-key li")]
    assert key == ["equal in both modes (on the diagonal)", "otherwise different"]
    shapes = [li.select_one("svg > *").name for li in soup.select("ul.evaldemo-chart-key li")]
    assert shapes == ["circle", "path"]
    _, soup = drawn_chart(view((0.0, 0.0, 2.0)), view((1.0, 1.0, 2.0)))
    key = [li.get_text(" ", strip=True) for li in soup.select("ul.evaldemo-chart-key li")]
    assert key == ["equal in both modes (on the diagonal)", "zero in train mode only (on the zero line)",
                   "\u00d7N N elements on the same spot"]


def test_chart_points_stay_inside_the_picture() -> None:
    _, soup = drawn_chart(view((-3.0, 0.0, 5.0)), view((-1.0, 2.0, 5.0)))
    picture = soup.select_one("svg.evaldemo-chart")
    assert picture is not None
    width, height = float(str(picture["width"])), float(str(picture["height"]))
    marks = soup.select("svg.evaldemo-chart circle")
    assert len(marks) == 1  # the one equal pair; the others differ
    for circle in marks:
        assert 0 <= float(str(circle["cx"])) <= width
        assert 0 <= float(str(circle["cy"])) <= height


def test_chart_of_constant_values_has_a_range() -> None:
    drawn, soup = drawn_chart(view((1.0, 1.0)), view((1.0, 1.0)))
    assert "nan" not in str(soup).lower()
    assert "2 equal" in drawn.text


def test_chart_escapes_its_caption() -> None:
    drawn, _ = drawn_chart(TRAIN, EVAL)
    html = visual.chart_html(drawn, "<script>alert(1)</script>")
    assert BeautifulSoup(html, "html.parser").find("script") is None


@pytest.mark.parametrize(
    ("train", "eval_"),
    [
        pytest.param(TRAIN, view((1.0, 2.0, 3.0, 4.0)), id="shapes-differ"),
        pytest.param(view(None, (300,)), view(None, (300,)), id="no-values"),
        pytest.param(view((math.nan, math.inf)), view((1.0, 2.0)), id="nothing-finite"),
    ],
)
def test_no_chart(train: TensorView, eval_: TensorView) -> None:
    assert visual.chart(train, eval_) is None


def test_summary_gives_every_statistic() -> None:
    big = TensorView(
        path="output", shape=(4, 32), dtype="float32", values=None,
        mean=0.0123456, std=1.5, min=-2.25, max=3.0, zeros=0.25,
    )
    assert visual.summary(big) == (
        "shape (4, 32) \u00b7 float32 \u00b7 mean 0.01235 \u00b7 std 1.5 \u00b7 min -2.25 "
        "\u00b7 max 3 \u00b7 zeros 25.0%"
    )


def test_summary_leaves_out_what_is_unknown() -> None:
    one = TensorView(path="output", shape=(1,), dtype="int64", values=(5.0,),
                     mean=5.0, std=None, min=5.0, max=5.0, zeros=0.0)
    assert visual.summary(one) == "shape (1,) \u00b7 int64 \u00b7 mean 5 \u00b7 min 5 \u00b7 max 5 \u00b7 zeros 0.0%"


def test_chart_text_leaves_out_kinds_it_does_not_have() -> None:
    drawn, _ = drawn_chart(view((1.0, 2.0)), view((1.5, 4.0)))
    assert drawn.text == "Train output plotted against eval output, 2 elements: 2 otherwise different."
    assert "0 zero" not in drawn.text and "0 equal" not in drawn.text


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        pytest.param(-0.458, 0.318, (-0.4, -0.2, 0.0, 0.2), id="tenths"),
        pytest.param(0.0, 1.0, (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), id="unit"),
        pytest.param(-2.3, 4.1, (-2.0, 0.0, 2.0, 4.0), id="twos"),
        pytest.param(10.0, 1000.0, (200.0, 400.0, 600.0, 800.0, 1000.0), id="hundreds"),
        pytest.param(1.0, 1.0, (), id="no-range"),
    ],
)
def test_round_ticks(low: float, high: float, ticks: tuple[float, ...]) -> None:
    assert visual.round_ticks(low, high) == ticks

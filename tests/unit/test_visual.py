"""visual: marked element grids, the train-against-eval chart and its text alternative,
the summary of a large tensor, and escaping. Pure functions over TensorView data."""

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


def cells(html: str) -> list[list[tuple[str, list[str]]]]:
    """``[[(text, classes), ...] per row]`` of the grid's table."""
    table = BeautifulSoup(html, "html.parser").select_one("table.evaldemo-grid")
    assert table is not None
    return [
        [(td.get_text(), [str(c) for c in td.get_attribute_list("class") if c]) for td in tr.find_all("td")]
        for tr in table.find_all("tr")
    ]


def test_grid_marks_differing_and_zeroed_cells_with_glyph_and_class() -> None:
    html = visual.element_grid(TRAIN, EVAL, "train", "eval")
    assert html is not None
    rows = cells(html)
    assert rows == [
        [(f"0.0000{visual.ZEROED} (zero in model.train(), 0.5000 in model.eval())", ["evaldemo-zeroed"]),
         (f"2.0000{visual.DIFFERS} (model.eval() gives 1.0000)", ["evaldemo-differs"])],
        [("1.0000", []),
         (f"4.0000{visual.DIFFERS} (model.eval() gives 2.0000)", ["evaldemo-differs"])],
    ]
    soup = BeautifulSoup(html, "html.parser")
    # the glyph is decoration for sight; the words are there for screen readers
    marks = soup.select("span.evaldemo-mark")
    assert [m.get_text() for m in marks] == [visual.ZEROED, visual.DIFFERS, visual.DIFFERS]
    assert all(m["aria-hidden"] == "true" for m in marks)
    zeroed = soup.select_one("td.evaldemo-zeroed")
    assert zeroed is not None
    assert zeroed["title"] == "zero in model.train(), 0.5000 in model.eval()"
    legend = soup.select_one("p.evaldemo-legend")
    assert legend is not None
    assert visual.DIFFERS in legend.get_text()
    assert visual.ZEROED in legend.get_text()


def test_grid_from_the_other_side_marks_no_zeroed_cell() -> None:
    html = visual.element_grid(EVAL, TRAIN, "eval", "train")
    assert html is not None
    classes = [c for row in cells(html) for _, c in row]
    assert classes == [["evaldemo-differs"], ["evaldemo-differs"], [], ["evaldemo-differs"]]


def test_one_dimensional_tensor_is_one_row() -> None:
    html = visual.element_grid(view((1.0, 0.0, 3.0)), view((1.0, 5.0, 3.0)), "train", "eval")
    assert html is not None
    (row,) = cells(html)
    assert [c for _, c in row] == [[], ["evaldemo-zeroed"], []]


def test_integer_values_print_as_integers() -> None:
    html = visual.element_grid(view((1.0, 2.0), dtype="int64"), view((1.0, 3.0), dtype="int64"), "train", "eval")
    assert html is not None
    (row,) = cells(html)
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
    html = visual.element_grid(view((1.0,) * 64, (8, 8)), view((2.0,) * 64, (8, 8)), "train", "eval")
    assert html is not None
    assert len(cells(html)) == 8
    assert all(len(row) == 8 for row in cells(html))


def test_grid_escapes_labels() -> None:
    evil = '<script>alert("x")</script>'
    html = visual.element_grid(TRAIN, EVAL, evil, evil)
    assert html is not None
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert BeautifulSoup(html, "html.parser").find("script") is None


def test_chart_counts_equal_zeroed_and_other() -> None:
    train = view((0.0, 2.0, 1.0, 4.0, 0.0, math.nan))
    eval_ = view((0.5, 1.0, 1.0, 2.0, 0.0, 3.0))
    drawn = visual.chart(train, eval_)
    assert drawn is not None
    svg, text = drawn
    # the NaN pair is left out: five elements plotted
    assert text == (
        "Train output plotted against eval output, 5 elements: 2 equal (on the diagonal), "
        "1 zero in train only (on the horizontal zero line), 2 otherwise different."
    )
    soup = BeautifulSoup(svg, "html.parser")
    chart = soup.select_one("svg.evaldemo-chart")
    assert chart is not None
    assert chart["role"] == "img"
    assert chart["aria-label"] == text
    title = chart.find("title")
    assert title is not None
    assert title.get_text() == text
    assert len(soup.select("circle.evaldemo-pt-equal")) == 2
    assert len(soup.select("rect.evaldemo-pt-zeroed")) == 1
    assert len(soup.select("path.evaldemo-pt-differs")) == 2
    assert soup.select_one("line.evaldemo-diagonal") is not None


def test_chart_points_stay_inside_the_picture() -> None:
    svg, _ = visual.chart(view((-3.0, 0.0, 5.0)), view((-1.0, 2.0, 5.0))) or ("", "")
    soup = BeautifulSoup(svg, "html.parser")
    picture = soup.select_one("svg")
    assert picture is not None
    size = float(str(picture["width"]))
    circles = soup.select("circle")
    assert len(circles) == 1  # the one equal pair; the others differ
    for circle in circles:
        assert 0 <= float(str(circle["cx"])) <= size
        assert 0 <= float(str(circle["cy"])) <= size


def test_chart_of_constant_values_has_a_range() -> None:
    drawn = visual.chart(view((1.0, 1.0)), view((1.0, 1.0)))
    assert drawn is not None
    assert "nan" not in drawn[0].lower()
    assert "2 equal" in drawn[1]


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

"""Pictures of the modes' differences: a marked element grid and a train-against-eval chart.

Each picture is computed here as plain data (:class:`Grid`, :class:`Chart`, pure
functions over :class:`TensorView`), carried on a node, and written as HTML by that
node's visitor through :func:`grid_html` and :func:`chart_html`. Every number and
label is escaped; the text alternatives say in words what the marks and the chart show.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from html import escape

from .model import TensorView

#: Element-by-element grids up to this many elements; larger tensors get a summary.
MAX_GRID = 64
#: A grid cell: its value's characters plus this many of padding (the stylesheet's
#: ``padding: 0 1.8ch 0 0.3ch``), in a monospace font at GRID_FONT of the panel's size.
CELL_PAD = 2.1
GRID_FONT = 0.85
#: The advance of one monospace character, in its font's em (DejaVu Sans Mono, Menlo,
#: Consolas and SF Mono all use 0.6).
CH = 0.6
#: A block of columns fits this many characters: a 375 px phone's panel.
BLOCK_CHARS = 38
#: The gap between two blocks side by side (the stylesheet's), in the panel's em.
BLOCK_GAP = 0.6


def cell_em(width: int) -> float:
    """One grid cell's width in the panel's em, its 1 px border included."""
    return (width + CELL_PAD) * CH * GRID_FONT + 0.0625
DIFFERS = "\u2022"  # bullet: this element differs from the other mode
ZEROED = "\u2298"  # circled slash: zero here, not zero in the other mode
MARKS = {"differs": DIFFERS, "zeroed": ZEROED}


def _number(value: float, dtype: str) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if dtype.startswith(("int", "uint", "bool")):
        return str(int(value))
    text = f"{value:.4f}"
    # dropout of a negative value is -0.0: a zero, whatever its sign bit says
    return "0.0000" if value == 0 else text


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def summary(view: TensorView) -> str:
    """``shape (4, 8) · float32 · mean 0.01 · …``: the numbers of a large tensor."""
    parts = [f"shape {tuple(view.shape)}", view.dtype]
    for name in ("mean", "std", "min", "max"):
        value = getattr(view, name)
        if value is not None:
            parts.append(f"{name} {value:.4g}")
    parts.append(f"zeros {100 * view.zeros:.1f}%")
    return " \u00b7 ".join(parts)


def comparable(view: TensorView, other: TensorView | None) -> bool:
    return (
        other is not None
        and view.values is not None
        and other.values is not None
        and view.shape == other.shape
    )


# --- the element grid --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    kind: str = ""  # "", "differs" or "zeroed"
    hint: str = ""  # what the other mode gives, in words


@dataclass(frozen=True, slots=True)
class Grid:
    """One mode's elements, row by row, marked against the other mode's."""

    mode: str
    other_mode: str
    columns: int
    cells: tuple[Cell, ...]
    #: characters of the widest value in *either* mode: both grids get the same columns
    width: int
    #: the model's name as the code binds it (``net``), for the hints and the legend
    name: str = "model"

    @property
    def block(self) -> int:
        """Columns per block: a wide tensor is wrapped into blocks of this many columns
        (as torch wraps its printout), narrow enough for a phone's column; both modes'
        grids share it, so their blocks line up."""
        return max(1, min(self.columns, int(BLOCK_CHARS // (self.width + CELL_PAD))))

    @property
    def em(self) -> float:
        """The width of the whole grid (its blocks in one row, with their gaps) in the panel's em."""
        blocks = -(-self.columns // self.block)
        return round(self.columns * cell_em(self.width) + (blocks - 1) * BLOCK_GAP, 2)

    @property
    def all_differ(self) -> bool:
        """Every element differs: said once, so a mark on every cell is not needed."""
        return all(cell.kind for cell in self.cells)

    @property
    def shown(self) -> tuple[str, ...]:
        """The kinds of mark on screen, in the legend's order."""
        kinds = {cell.kind for cell in self.cells if cell.kind}
        if self.all_differ:
            kinds.discard("differs")
        return tuple(kind for kind in MARKS if kind in kinds)


def element_grid(
    view: TensorView, other: TensorView, mode: str, other_mode: str,
    differs: tuple[int, ...] | None = None, name: str = "model",
) -> Grid | None:
    """The elements of ``view``, those that differ from ``other`` marked; None when nothing differs.

    ``differs``: the comparison's own verdict, the flat indices of the elements that
    differ (equal up to rounding is not a difference); without it, values are compared.
    ``name``: the model's name as the code binds it, for the hints.
    """
    if not comparable(view, other) or view.numel > MAX_GRID or len(view.shape) > 2:
        return None
    assert view.values is not None and other.values is not None
    texts = [_number(value, view.dtype) for value in view.values]
    others = [_number(value, other.dtype) for value in other.values]
    cells = []
    marked = None if differs is None else frozenset(differs)
    for index, (mine, theirs, text, their_text) in enumerate(
            zip(view.values, other.values, texts, others, strict=True)):
        if (index not in marked) if marked is not None else _same(mine, theirs):
            cells.append(Cell(text))
        elif mine == 0 and theirs != 0:
            cells.append(Cell(text, "zeroed", f"zero in {name}.{mode}(), {their_text} in {name}.{other_mode}()"))
        else:
            cells.append(Cell(text, "differs", f"{name}.{other_mode}() gives {their_text}"))
    if not any(cell.kind for cell in cells):
        return None  # nothing to mark: the printout says it all
    width = max(len(text) for text in texts + others)
    return Grid(mode, other_mode, view.shape[-1] if view.shape else 1, tuple(cells), width, name)


def _legend_text(kind: str, grid: Grid) -> str:
    if kind == "zeroed":
        return f"zero here, not in {grid.name}.{grid.other_mode}()"
    return f"differs from {grid.name}.{grid.other_mode}()"


def _cell_html(cell: Cell, marked: set[str]) -> str:
    if cell.kind not in marked:
        return (f'<td title="{escape(cell.hint)}">{escape(cell.text)}</td>' if cell.hint
                else f"<td>{escape(cell.text)}</td>")
    return (
        f'<td class="evaldemo-{cell.kind}" title="{escape(cell.hint)}">{escape(cell.text)}'
        f'<span class="evaldemo-mark" aria-hidden="true">{MARKS[cell.kind]}</span>'
        f'<span class="evaldemo-sr"> ({escape(cell.hint)})</span></td>'
    )


def grid_html(grid: Grid) -> str:
    """The grid as tables of at most ``grid.block`` columns each, which wrap as the page's
    width allows (a wide tensor's blocks carry their column indices); nothing scrolls."""
    marked = set(grid.shown)
    cells = [_cell_html(cell, marked) for cell in grid.cells]
    step, block = grid.columns, grid.block
    rows = [cells[i : i + step] for i in range(0, len(cells), step)]
    tables = []
    for first in range(0, step, block):
        last = min(step, first + block)
        head = ""
        if block < step:  # the column indices, as torch's printout names its blocks
            head = ("<thead><tr>" + "".join(f'<th scope="col">{index}</th>' for index in range(first, last))
                    + "</tr></thead>")
        body = "".join(f"<tr>{''.join(row[first:last])}</tr>" for row in rows)
        tables.append(f'<table class="evaldemo-grid">{head}<tbody>{body}</tbody></table>')
    notes = [
        f'<span class="evaldemo-key-{kind}"><span aria-hidden="true">{MARKS[kind]}</span> '
        f"{escape(_legend_text(kind, grid))}</span>"
        for kind in grid.shown
    ]
    legend = f'<p class="evaldemo-legend">{" ".join(notes)}</p>' if notes else ""
    name, mode, other = escape(grid.name), escape(grid.mode), escape(grid.other_mode)
    label = f"{name}.{mode}() output element by element, against {name}.{other}()"
    # every element differs: the sentence above says so, and no cell is marked one by one
    every = ' data-all-differ="true"' if grid.all_differ else ""
    return (
        f'<div class="evaldemo-grid-box" role="group" aria-label="{label}"{every} '
        f'style="--evaldemo-cell: {grid.width}ch">{"".join(tables)}</div>{legend}'
    )


# --- the chart ---------------------------------------------------------------------------

#: the chart's drawing area, in SVG units (the picture scales down on a narrow screen)
WIDTH, HEIGHT = 360, 330
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 48
KEY = {
    "equal": "equal in both modes (on the diagonal)",
    "zeroed": "zero in train mode only (on the zero line)",
    "differs": "otherwise different",
}


@dataclass(frozen=True, slots=True)
class Point:
    eval: float
    train: float
    kind: str  # "equal", "zeroed" or "differs"
    count: int = 1  # elements drawn on the same spot


@dataclass(frozen=True, slots=True)
class Chart:
    low: float
    high: float
    points: tuple[Point, ...]
    text: str  # the drawing's text alternative (where each kind lies on it)
    #: the same counts without the drawing: the caption, and all that builders without
    #: the picture show (no sentence about a chart that is not there)
    words: str = ""

    @property
    def kinds(self) -> tuple[str, ...]:
        present = {point.kind for point in self.points}
        return tuple(kind for kind in KEY if kind in present)

    @property
    def ticks(self) -> tuple[float, ...]:
        """Round values (1, 2 or 5 times a power of ten) inside the drawn range, 0 among them."""
        return round_ticks(self.low, self.high)


def chart(train: TensorView, eval_: TensorView, differs: tuple[int, ...] | None = None) -> Chart | None:
    """Train values against eval values, coincident points counted, with a text alternative
    (``differs``: as for :func:`element_grid`)."""
    if not comparable(train, eval_):
        return None
    assert train.values is not None and eval_.values is not None
    marked = None if differs is None else frozenset(differs)
    pairs = [
        (float(e), float(t), t == e if marked is None else index not in marked)  # ints drawn as floats
        for index, (t, e) in enumerate(zip(train.values, eval_.values, strict=True))
        if math.isfinite(t) and math.isfinite(e)
    ]
    if not pairs:
        return None
    low = min(min(e, t) for e, t, _ in pairs)
    high = max(max(e, t) for e, t, _ in pairs)
    if high == low:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.06
    low, high = low - pad, high + pad

    # points closer than a pixel share a marker, which says how many it stands for
    span, bottom = high - low, HEIGHT - BOTTOM  # as _at computes, so spots match the drawing
    spots: Counter[tuple[str, float, float]] = Counter()
    first: dict[tuple[str, float, float], tuple[float, float]] = {}
    counts: Counter[str] = Counter()
    for e, t, same in pairs:  # one pass: thousands of elements on a big output
        kind = "equal" if same else ("zeroed" if t == 0 else "differs")
        spot = (kind, round(LEFT + (e - low) / span * (WIDTH - RIGHT - LEFT), 1),
                round(bottom + (t - low) / span * (TOP - bottom), 1))
        spots[spot] += 1
        counts[kind] += 1
        first.setdefault(spot, (e, t))
    points = tuple(Point(e, t, spot[0], spots[spot]) for spot, (e, t) in first.items())
    words = {"equal": "equal (on the diagonal)",
             "zeroed": "zero in train mode only (on the horizontal zero line)",
             "differs": "otherwise different"}
    said = [f"{counts[kind]} {words[kind]}" for kind in words if counts[kind]]
    text = f"Train output plotted against eval output, {len(pairs)} elements: {', '.join(said)}."
    plain = {"equal": "equal", "zeroed": "zero in train mode only", "differs": "otherwise different"}
    told = [f"{counts[kind]} {plain[kind]}" for kind in plain if counts[kind]]
    in_words = f"Train against eval, element by element ({len(pairs)} elements): {', '.join(told)}."
    return Chart(low, high, points, text, in_words)


def _at(value: float, low: float, high: float, start: float, end: float) -> float:
    """``value`` in [low, high] mapped onto the pixels from ``start`` to ``end``."""
    return round(start + (value - low) / (high - low) * (end - start), 1)


def round_ticks(low: float, high: float, most: int = 5) -> tuple[float, ...]:
    """Ticks at round values between ``low`` and ``high``: at most ``most`` of them."""
    span = high - low
    if not span > 0 or not math.isfinite(span):
        return ()
    power = 10 ** math.floor(math.log10(span / most))
    step = next(power * factor for factor in (1, 2, 5, 10) if span / (power * factor) <= most)
    first = math.ceil(low / step)
    return tuple(round(index * step, 12) for index in range(first, math.floor(high / step) + 1))


def _tick(value: float) -> str:
    return "0" if value == 0 else f"{value:g}"


def _marker(kind: str, x: float, y: float) -> str:
    if kind == "equal":
        return f'<circle class="evaldemo-pt-equal" cx="{x}" cy="{y}" r="3.5"/>'
    if kind == "zeroed":
        return f'<rect class="evaldemo-pt-zeroed" x="{x - 4}" y="{y - 4}" width="8" height="8"/>'
    return f'<path class="evaldemo-pt-differs" d="M{x},{y - 5} L{x + 5},{y + 4} L{x - 5},{y + 4} Z"/>'


def chart_html(drawn: Chart, caption: str) -> str:
    """An inline SVG (ticks at min / 0 / max, counts on shared spots), then its key and caption."""
    low, high = drawn.low, drawn.high

    def x(value: float) -> float:
        return _at(value, low, high, LEFT, WIDTH - RIGHT)

    def y(value: float) -> float:
        return _at(value, low, high, HEIGHT - BOTTOM, TOP)

    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    parts = [
        f'<rect class="evaldemo-frame" x="{left}" y="{top}" width="{right - left}" height="{bottom - top}"/>',
        f'<line class="evaldemo-diagonal" x1="{left}" y1="{bottom}" x2="{right}" y2="{top}"/>',
    ]
    if low < 0 < high:
        parts.append(f'<line class="evaldemo-axis" x1="{left}" y1="{y(0)}" x2="{right}" y2="{y(0)}"/>')
    for value in drawn.ticks:
        label = escape(_tick(value))
        parts.append(f'<line class="evaldemo-tick" x1="{x(value)}" y1="{bottom}" x2="{x(value)}" y2="{bottom + 5}"/>'
                     f'<text class="evaldemo-tick-label" x="{x(value)}" y="{bottom + 18}" '
                     f'text-anchor="middle">{label}</text>')
        parts.append(f'<line class="evaldemo-tick" x1="{left - 5}" y1="{y(value)}" x2="{left}" y2="{y(value)}"/>'
                     f'<text class="evaldemo-tick-label" x="{left - 8}" y="{y(value) + 4}" '
                     f'text-anchor="end">{label}</text>')
    for point in drawn.points:
        across, up = x(point.eval), y(point.train)
        parts.append(_marker(point.kind, across, up))
        if point.count > 1:
            parts.append(f'<text class="evaldemo-count" x="{across + 7}" y="{up - 6}">'
                         f"\u00d7{point.count}</text>")
    parts.append(f'<text class="evaldemo-axis-label" x="{(left + right) / 2}" y="{HEIGHT - 8}" '
                 'text-anchor="middle">eval value</text>')
    middle = (top + bottom) / 2
    parts.append(f'<text class="evaldemo-axis-label" x="14" y="{middle}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {middle})">train value</text>')
    svg = (
        f'<svg class="evaldemo-chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" aria-label="{escape(drawn.text)}">'
        + "".join(parts) + "</svg>"
    )
    key = [
        f'<li><svg class="evaldemo-key-shape" viewBox="0 0 14 14" width="14" height="14" '
        f'aria-hidden="true">{_marker(kind, 7, 7.5)}</svg> {escape(KEY[kind])}</li>'
        for kind in drawn.kinds
    ]
    if any(point.count > 1 for point in drawn.points):
        key.append('<li><span class="evaldemo-key-count" aria-hidden="true">\u00d7N</span> '
                   "N elements on the same spot</li>")
    return (
        svg + f'<figcaption><ul class="evaldemo-chart-key" aria-hidden="true">{"".join(key)}</ul>'
        f'<p class="evaldemo-chart-text">{escape(caption)}</p></figcaption>'
    )

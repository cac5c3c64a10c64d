"""HTML fragments that make the modes' differences visible: marked elements, a chart, a summary.

Pure functions over :class:`TensorView` data; every number and label is escaped.
The text alternatives say in words what the marks and the chart show.
"""

from __future__ import annotations

import math
from html import escape

from .model import TensorView

#: Element-by-element grids up to this many elements; larger tensors get a summary.
MAX_GRID = 64
DIFFERS = "\u2022"  # bullet: this element differs from the other mode
ZEROED = "\u2298"  # circled slash: zero here, not zero in the other mode


def _number(value: float, dtype: str) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if dtype.startswith(("int", "uint", "bool")):
        return str(int(value))
    return f"{value:.4f}"


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


def element_grid(view: TensorView, other: TensorView, mode: str, other_mode: str) -> str | None:
    """A table of the elements, those that differ from ``other`` marked (glyph + style)."""
    if not comparable(view, other) or view.numel > MAX_GRID or len(view.shape) > 2:
        return None
    assert view.values is not None and other.values is not None
    columns = view.shape[-1] if view.shape else 1
    cells = []
    for mine, theirs in zip(view.values, other.values, strict=True):
        text = _number(mine, view.dtype)
        if _same(mine, theirs):
            cells.append(f"<td>{escape(text)}</td>")
            continue
        zeroed = mine == 0 and theirs != 0
        kind, mark = ("evaldemo-zeroed", ZEROED) if zeroed else ("evaldemo-differs", DIFFERS)
        hint = (
            f"zero in model.{mode}(), {_number(theirs, other.dtype)} in model.{other_mode}()"
            if zeroed
            else f"model.{other_mode}() gives {_number(theirs, other.dtype)}"
        )
        cells.append(
            f'<td class="{kind}" title="{escape(hint)}">{escape(text)}'
            f'<span class="evaldemo-mark" aria-hidden="true">{mark}</span>'
            f'<span class="evaldemo-sr"> ({escape(hint)})</span></td>'
        )
    if all(cell.startswith("<td>") for cell in cells):
        return None  # nothing to mark: the printout says it all
    rows = ["".join(cells[i : i + columns]) for i in range(0, len(cells), columns)]
    label = f"model.{mode}() output element by element; elements that differ from model.{other_mode}() are marked"
    body = "".join(f"<tr>{row}</tr>" for row in rows)
    legend = (
        f'<p class="evaldemo-legend"><span class="evaldemo-differs">{DIFFERS} differs from '
        f'model.{escape(other_mode)}()</span> <span class="evaldemo-zeroed">{ZEROED} zero here '
        "only</span></p>"
    )
    return (
        # the box scrolls when the table is wider than the panel: focusable, so a keyboard can
        f'<div class="evaldemo-grid-box" tabindex="0" role="group" '
        f'aria-label="model.{escape(mode)}() elements">'
        f'<table class="evaldemo-grid" aria-label="{escape(label)}">'
        f"<tbody>{body}</tbody></table>{legend}</div>"
    )


def chart(train: TensorView, eval_: TensorView) -> tuple[str, str] | None:
    """An inline SVG of train values against eval values, and its text alternative."""
    if not comparable(train, eval_):
        return None
    assert train.values is not None and eval_.values is not None
    pairs = [
        (e, t) for t, e in zip(train.values, eval_.values, strict=True)
        if math.isfinite(t) and math.isfinite(e)
    ]
    if not pairs:
        return None
    low = min(min(p) for p in pairs)
    high = max(max(p) for p in pairs)
    if high == low:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    size, margin = 220, 28

    def scale(value: float, flip: bool = False) -> float:
        fraction = (value - low) / (high - low)
        return round(margin + (1 - fraction if flip else fraction) * (size - 2 * margin), 2)

    equal = sum(1 for e, t in pairs if t == e)
    zeroed = sum(1 for e, t in pairs if t == 0 and e != 0)
    other = len(pairs) - equal - zeroed
    text = (
        f"Train output plotted against eval output, {len(pairs)} elements: {equal} equal "
        f"(on the diagonal), {zeroed} zero in train only (on the horizontal zero line), "
        f"{other} otherwise different."
    )
    marks = []
    for e, t in pairs:
        x, y = scale(e), scale(t, flip=True)
        if t == e:
            marks.append(f'<circle class="evaldemo-pt-equal" cx="{x}" cy="{y}" r="2.5"/>')
        elif t == 0:
            marks.append(
                f'<rect class="evaldemo-pt-zeroed" x="{x - 3}" y="{y - 3}" width="6" height="6"/>'
            )
        else:
            marks.append(
                f'<path class="evaldemo-pt-differs" d="M{x},{y - 4} L{x + 4},{y + 3} L{x - 4},{y + 3} Z"/>'
            )
    zero_y = scale(0.0, flip=True) if low < 0 < high else None
    zero_line = (
        f'<line class="evaldemo-axis" x1="{margin}" y1="{zero_y}" x2="{size - margin}" y2="{zero_y}"/>'
        if zero_y is not None else ""
    )
    svg = (
        f'<svg class="evaldemo-chart" role="img" viewBox="0 0 {size} {size}" width="{size}" '
        f'height="{size}" aria-label="{escape(text)}">'
        f"<title>{escape(text)}</title>"
        f'<rect class="evaldemo-frame" x="{margin}" y="{margin}" width="{size - 2 * margin}" '
        f'height="{size - 2 * margin}"/>'
        f'<line class="evaldemo-diagonal" x1="{scale(low)}" y1="{scale(low, True)}" '
        f'x2="{scale(high)}" y2="{scale(high, True)}"/>{zero_line}'
        + "".join(marks)
        + f'<text x="{size / 2}" y="{size - 6}" text-anchor="middle">eval value</text>'
        f'<text x="10" y="{size / 2}" text-anchor="middle" transform="rotate(-90 10 {size / 2})">'
        "train value</text></svg>"
    )
    return svg, text

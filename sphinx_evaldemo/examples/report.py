"""The ``{evaldemo-report}`` directive: every example of the project, how its run went, totals."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from .diagnose import diagnose
from .model import MODES, ExampleResult, ModeRun
from .records import ExampleRecord

if TYPE_CHECKING:
    from .execution import Execution as Runner


class evaldemo_report(nodes.General, nodes.Element):  # noqa: N801  # docutils naming
    """Placeholder, replaced by a table when the page is written."""


class ReportDirective(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.note_reread()  # the table depends on every page: rebuild it every time
        node = evaldemo_report()
        self.set_source_info(node)
        return [node]


def status(job: ExampleRecord, result: ExampleResult | None) -> str:
    """``ok``, or what went wrong: the same verdict as the build's warnings."""
    if result is None:
        return "no result"
    problems = diagnose(job, result)
    if problems:
        return "failed: " + ", ".join(dict.fromkeys(kind for _, _, kind in problems))
    if result.failure is not None:
        return f"ok (raised {result.failure.exc_type}, as expected)"
    return "ok"


def of_mode(result: ExampleResult | None, mode: str, value: Callable[[ModeRun], str]) -> str:
    """One mode's figure, or empty where the example has no such pass."""
    run = next((run for run in result.runs if run.mode == mode), None) if result else None
    return value(run) if run is not None else ""


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def mebibytes(run: ModeRun) -> str:
    return f"{run.peak_memory / 2**20:.0f}" if run.peak_memory else "n/a"


#: One column per mode, numbers only (units in the header), so the table stays narrow.
HEADERS = ("Example", "Caption", "Status", "From", "Run time (ms)", "train (ms)", "eval (ms)")
WIDTHS = (16, 22, 14, 6, 8, 7, 7)
MEMORY = (("train peak (MiB)", 7), ("eval peak (MiB)", 7))
#: Peaks closer together than this (MiB) tell only the worker's own size: the column is dropped.
MEMORY_SPREAD = 16


@dataclass(frozen=True, slots=True)
class Row:
    record: ExampleRecord
    result: ExampleResult | None
    source: str  # "run", "cache" or ""
    status: str

    @property
    def seconds(self) -> float:
        return self.result.seconds if self.result else 0.0

    @property
    def failed(self) -> bool:
        return self.status.startswith(("failed", "not run"))


def entry(runner: Runner, record: ExampleRecord) -> Row:
    """One example's row: its result, where the result came from, its status."""
    if not record.runnable:
        return Row(record, None, "", "not run: " + (record.problem or ""))
    result = runner.result(record)
    source = "run" if runner.source(record) == "run" else ("cache" if result else "")
    return Row(record, result, source, status(record, result))


def collect(runner: Runner, recorded: Mapping[str, list[ExampleRecord]]) -> list[Row]:
    """One row per example of the project, slowest first (page order among equals)."""
    found = [entry(runner, r) for records in recorded.values() for r in records]
    return sorted(found, key=lambda row: (-row.seconds, row.record.docname, row.record.lineno))


def build(
    runner: Runner, recorded: dict[str, list[ExampleRecord]], uri: Callable[[str], str | None]
) -> list[nodes.Node]:
    """The report: a table (each row linked to its example), its totals, and a word on memory.

    ``uri(docname)`` is the page's address from the report's page, or None where the
    builder has no links (the row then names the page in plain text).
    """
    found = collect(runner, recorded)
    peaks = [run.peak_memory for row in found if row.result for run in row.result.runs if run.peak_memory]
    memory = bool(peaks) and max(peaks) - min(peaks) >= MEMORY_SPREAD * 2**20
    headers, widths = list(HEADERS), list(WIDTHS)
    if memory:
        headers += [header for header, _ in MEMORY]
        widths += [width for _, width in MEMORY]
    cells = []
    for row in found:
        cell: list[nodes.Node | str] = [
            _link(row.record, uri), row.record.caption, row.status, row.source,
            milliseconds(row.seconds) if row.result else "",
            *(of_mode(row.result, mode, lambda run: milliseconds(run.seconds)) for mode in MODES),
        ]
        if memory:
            cell += [of_mode(row.result, mode, mebibytes) for mode in MODES]
        cells.append(cell)
    # colwidths-auto: the browser sizes the columns to their content
    out: list[nodes.Node] = [table(headers, widths, cells, "evaldemo-report", "colwidths-auto")]
    out.append(nodes.paragraph("", totals(found), classes=["evaldemo-totals"]))
    if peaks and not memory:
        out.append(nodes.paragraph("", (
            f"Peak memory is left out: every example's worker peaked between {min(peaks) / 2**20:.0f} "
            f"and {max(peaks) / 2**20:.0f} MiB, which is the size of a worker with torch loaded, "
            "not of the example."
        ), classes=["evaldemo-report-note"]))
    return out


def totals(found: Sequence[Row]) -> str:
    """``Totals: 12 examples, 10 ran in this build, 2 from the cache, 1 failed; run time 3.20 s.``"""
    ran = sum(row.source == "run" for row in found)
    cached = sum(row.source == "cache" for row in found)
    failed = sum(row.failed for row in found)
    seconds = sum(row.seconds for row in found)
    return (
        f"Totals: {len(found)} example{'s' if len(found) != 1 else ''}, {ran} ran in this build, "
        f"{cached} from the cache, {failed} failed; run time {seconds:.2f} s."
    )


def _link(record: ExampleRecord, uri: Callable[[str], str | None]) -> nodes.Node:
    text = f"{record.docname}:{record.lineno}"
    page = uri(record.docname)
    if page is None:
        return nodes.Text(text)
    base = page.split("#", 1)[0] if "#" in page and not page.startswith("#") else page
    target = f"{base}#{record.anchor}" if not base.startswith("#") else f"#{record.anchor}"
    return nodes.reference("", text, refuri=target, internal=True)


def table(
    headers: Sequence[str], widths: Sequence[int], rows: Sequence[Sequence[nodes.Node | str]],
    *classes: str,
) -> nodes.table:
    """A plain docutils table, which every builder knows how to write."""
    grid = nodes.table(classes=["evaldemo-table", *classes])
    group = nodes.tgroup(cols=len(headers))
    grid += group
    group += [nodes.colspec(colwidth=width) for width in widths]
    head = nodes.thead()
    head += _row(headers)
    body = nodes.tbody()
    body += [_row(row) for row in rows]
    group += [head, body]
    return grid


def _row(cells: Sequence[nodes.Node | str]) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        if isinstance(cell, nodes.paragraph):
            entry += cell
        else:
            entry += nodes.paragraph("", "", cell if isinstance(cell, nodes.Node) else nodes.Text(cell))
        row += entry
    return row

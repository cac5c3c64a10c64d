"""The ``{evaldemo-report}`` directive: every example of the project, and how its run went."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from .diagnose import diagnose
from .model import ExampleResult
from .records import ExampleRecord

if TYPE_CHECKING:
    from .runner import Runner


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


def per_mode(result: ExampleResult | None, value: Callable[[float, int], str]) -> str:
    if result is None or not result.runs:
        return ""
    return ", ".join(f"{run.mode} {value(run.seconds, run.peak_memory)}" for run in result.runs)


def milliseconds(seconds: float, _: int) -> str:
    return f"{seconds * 1000:.1f} ms"


def megabytes(_: float, peak: int) -> str:
    return f"{peak / 2**20:.0f} MiB" if peak else "n/a"


HEADERS = ("Page", "Line", "Status", "From", "Run time", "Time per mode", "Peak memory per mode")
WIDTHS = (16, 5, 18, 6, 9, 22, 22)


def table(
    headers: Sequence[str], widths: Sequence[int], rows: Sequence[Sequence[nodes.Node | str]]
) -> nodes.table:
    """A plain docutils table, which every builder knows how to write."""
    grid = nodes.table(classes=["evaldemo-table"])
    group = nodes.tgroup(cols=len(headers))
    grid += group
    group += [nodes.colspec(colwidth=width) for width in widths]
    head = nodes.thead()
    head += _row(headers)
    body = nodes.tbody()
    body += [_row(row) for row in rows]
    group += [head, body]
    return grid


def rows(
    runner: Runner, recorded: dict[str, list[ExampleRecord]],
    link: Callable[[ExampleRecord], nodes.Node | str],
) -> list[list[nodes.Node | str]]:
    """One row per example of the project, in page order."""
    found: list[list[nodes.Node | str]] = []
    every = sorted((r for records in recorded.values() for r in records),
                   key=lambda r: (r.docname, r.lineno))
    for record in every:
        if not record.runnable:
            found.append([link(record), str(record.lineno), "not run: " + (record.problem or ""),
                          "", "", "", ""])
            continue
        result = runner.result(record)
        source = runner.source(record)
        found.append([
            link(record), str(record.lineno), status(record, result),
            "run" if source == "run" else ("cache" if result else ""),
            f"{result.seconds * 1000:.1f} ms" if result else "",
            per_mode(result, milliseconds),
            per_mode(result, megabytes),
        ])
    return found


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

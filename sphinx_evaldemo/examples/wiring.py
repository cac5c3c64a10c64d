"""The examples feature in Sphinx: nodes, directives, and events, each handed to the core.

One :class:`~.core.Execution` per build, made when the configuration is read and
dropped when the build ends; the handlers pass Sphinx's state to it and its answers
(warnings, results) back to Sphinx.
"""

from __future__ import annotations

import contextlib
import functools
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakKeyDictionary

from docutils import nodes as docutils_nodes
from sphinx import addnodes
from sphinx.errors import SphinxError
from sphinx.util import logging
from sphinx.util.display import status_iterator

from .. import config
from . import claims, freezing, report, report_files, reproduce, snapshot
from . import nodes as node_kinds
from .cache import default_namespace, fingerprint, open_cache
from .core import Outcome, Problem, StopBuild, not_run_advice, reads_ahead
from .directive import EvalDemoDirective
from .execution import Execution
from .nodes import (
    depart_example_html,
    depart_fold_html,
    depart_panel_html,
    evaldemo_chart,
    evaldemo_code,
    evaldemo_example,
    evaldemo_fold,
    evaldemo_grid,
    evaldemo_output,
    evaldemo_panel,
    evaldemo_panels,
    example_title,
    visit_chart_html,
    visit_code_html,
    visit_example_html,
    visit_fold_html,
    visit_grid_html,
    visit_output_html,
    visit_output_text,
    visit_panel_html,
)
from .options import raised_as_expected
from .records import ExampleCollector, ExampleRecord, examples, record_of
from .render import failure_nodes, output_nodes, problem_nodes

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from docutils import nodes
    from sphinx.application import Sphinx
    from sphinx.config import Config
    from sphinx.environment import BuildEnvironment

    from .model import ExampleResult

logger = logging.getLogger(__name__)

#: each build's execution, from the configuration's reading to the build's end
_RUNNERS: WeakKeyDictionary[Sphinx, Execution] = WeakKeyDictionary()
#: Sphinx's saved environment; a build that finds none reads every page
_ENV_PICKLE = "environment.pickle"

F = TypeVar("F", bound="Callable[..., Any]")
#: What to do about a page written without its example's result ("never" shows code only).
class SchedulerUnreachable(SphinxError):
    """With ``evaldemo_dask_unreachable = "error"``: the build stops, saying why."""

    category = "evaldemo: Dask scheduler unreachable"


def _stops(handler: F) -> F:
    """The core's :class:`StopBuild` as the error Sphinx shows."""

    @functools.wraps(handler)
    def handle(*args: Any) -> Any:
        try:
            return handler(*args)
        except StopBuild as stop:
            raise SchedulerUnreachable(str(stop)) from None

    return handle  # type: ignore[return-value]  # the same signature


def runner(app: Sphinx) -> Execution:
    """The build's execution (made when the configuration is read)."""
    return _RUNNERS[app]


def on_config(app: Sphinx, conf: Config) -> None:
    """The earliest event with the final settings: open the cache, and start what will
    surely be needed (a remote cache's snapshot, or the executor of a clean build)."""
    settings = config.settings(conf)
    found = None
    if reads_ahead(settings, str(app.srcdir)):
        namespace = settings.cache_namespace or default_namespace(str(conf.project))
        found = snapshot.start(os.fspath(settings.cache_dir or ""), namespace,
                               settings.cache_storage_options)
    cache = open_cache(settings, app.confdir, app.doctreedir, conf.project, found)
    run = Execution(
        settings, cache, str(app.srcdir), jobs=app.parallel,
        warn=lambda message, kind: logger.warning("%s", message, type="evaldemo", subtype=kind),
        # weakly: the build's state is kept per app (a weak key), so a strong reference
        # back to the app from it would keep every build alive
        still=functools.partial(_still, weakref.ref(app)),
    )
    if cache.check():
        _cache_trouble(run)
    _RUNNERS[app] = run
    conf.numfig_format.setdefault("evaldemo", "Example %s")
    run.configured(clean=not (Path(app.doctreedir) / _ENV_PICKLE).exists())


def _still(app_ref: weakref.ref[Sphinx], records: Sequence[ExampleRecord], seconds: float) -> None:
    """A run the build has waited on for a while, named again (``index.md:12 (15 s)``)."""
    app = app_ref()
    where = ", ".join(f"{app.env.doc2path(r.docname, False)}:{r.lineno}" for r in records) if app else ""
    logger.info("evaldemo: still running %s (%.0f s)", where or "an example", seconds)


def on_outdated(app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str],
                removed: set[str]) -> list[str]:
    """Pages whose examples have no stored result (an interrupted build) are read again."""
    known = examples(env)
    return runner(app).outdated({d: r for d, r in known.items() if d not in removed})


def _cache_trouble(run: Execution) -> None:
    """A cache that failed during the build (a refused write) is one warning, once."""
    if run.cache.problem and not run.cache_warned:
        run.cache_warned = True
        logger.warning("%s", run.cache.problem, type="evaldemo", subtype="cache")


@_stops
def on_before_read(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    runner(app).before_reading(docnames, examples(env), lambda docname: str(env.doc2path(docname)))


@_stops
def on_record(app: Sphinx, record: ExampleRecord) -> None:
    runner(app).recorded(record)


@_stops
def on_env_updated(app: Sphinx, env: BuildEnvironment) -> list[str]:
    def progress(outcomes: Iterator[Outcome], total: int) -> Iterable[Outcome]:
        return status_iterator(
            outcomes, "evaldemo: running examples... ", "darkgreen", total, app.verbosity,
            stringify_func=lambda o: f"{o.record.docname}:{o.record.lineno}",
        )

    run = runner(app)
    _warn(run.read(examples(env), parallel_write=getattr(app.builder, "parallel_ok", True),
                   progress=progress))
    run.preload(examples(env))
    _cache_trouble(run)
    return []


def _warn(problems: Iterable[Problem]) -> None:
    for docname, line, message, kind, where in problems:
        logger.warning("%s", message, location=where or (docname, line), type="evaldemo",
                       subtype=kind)


@_stops
def on_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    run = runner(app)
    reports = list(doctree.findall(report.evaldemo_report))
    # examples still running: this page waits for its own (the report, for all of them)
    shown = [record_of(app.env, node) for node in doctree.findall(evaldemo_example)]
    _warn(run.settle(None if reports else filter(None, shown)))
    for placeholder in reports:
        placeholder.replace_self([
            docutils_nodes.paragraph("", run.where_text(), classes=["evaldemo-where"]),
            *report.build(run, examples(app.env), _page_uri(app, docname)),
        ])
    for node in doctree.findall(evaldemo_example):
        record = record_of(app.env, node)
        if record is None or not record.runnable or node.get("rendered") or not run.executes:
            continue
        node["rendered"] = True
        result = run.result(record)
        if result is None:
            message = ("no result is stored for this example (it was not run); "
                       + not_run_advice(run.settings))
            logger.warning("%s", message, location=record.elsewhere() or (record.docname, record.lineno), type="evaldemo",
                           subtype="not-run")
            node += problem_nodes(message)
            continue
        produced: list[nodes.Node] = []
        if not record.hide_output:
            verdicts = claims.check(record.expect, result) if result.ok else []
            details = node.get("details") or run.settings.details
            produced += output_nodes(result, verdicts, request=record.request, details=details)
        if result.failure is not None:
            expected = raised_as_expected(record.raises, result.failure.exc_mro)
            produced.append(failure_nodes(result.failure, expected))
        for child in produced:  # numbers, not words: keep them out of the search index
            if isinstance(child, docutils_nodes.Element):
                child["classes"].append("no-search")
        node += produced
        if not record.hide_output and reproduce.offered(record.request, result):
            node += _script_link(app, record, result)


def _script_link(app: Sphinx, record: ExampleRecord, result: ExampleResult) -> node_kinds.evaldemo_download:
    """Write the example's script into ``_downloads/evaldemo/`` and link to it.

    The link is a Sphinx download reference by file name, so the HTML writer makes its
    address relative to the page as it writes it (``dirhtml``, ``singlehtml``).
    """
    assert record.request is not None  # reproduce.offered() checked it
    where = f"at {app.env.doc2path(record.docname, False)}, line {record.lineno}"
    text = reproduce.script(record.request, reproduce.model_name(record.request, result),
                            where=where, versions=reproduce.versions(fingerprint()))
    name = reproduce.file_name(text)
    path = Path(app.outdir) / "_downloads" / "evaldemo" / name
    # the node is in every doctree; the file only where the builder links to it
    if getattr(app.builder, "download_support", False) and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    link = addnodes.download_reference("", "", filename=f"evaldemo/{name}", classes=["evaldemo-download"])
    link += docutils_nodes.Text("Download this example as a script")
    line = node_kinds.evaldemo_download("", "", classes=["evaldemo-download-line", "no-search"])
    line += link
    return line


def _page_uri(app: Sphinx, fromdoc: str) -> Callable[[str], str | None]:
    def uri(docname: str) -> str | None:
        with contextlib.suppress(Exception):  # a builder without page links: plain text
            return str(app.builder.get_relative_uri(fromdoc, docname))
        return None

    return uri


def on_finished(app: Sphinx, exception: BaseException | None) -> None:
    freezing.thaw(app)
    run = _RUNNERS.get(app)
    if run is None:
        return
    if exception is None:  # the runs no written page waited for: the report holds them
        _warn(run.settle())
    _write_reports(app, run, complete=exception is None)
    _warn(run.finish(examples(app.env), set(app.env.found_docs), failed=exception is not None))
    _cache_trouble(run)
    line = run.closing_line(examples(app.env))
    if line:
        logger.info(line)


def _write_reports(app: Sphinx, run: Execution, *, complete: bool) -> None:
    """``evaldemo_report_files`` into the output folder, also after a failed build (what
    CI most wants to read then); ``complete`` says whether the build got to its end."""
    if not run.settings.report_files:
        return
    found = report_files.rows(run, examples(app.env),
                               lambda name: Path(app.env.doc2path(name, False)).as_posix())
    for problem in report_files.write(app.outdir, run.settings.report_files, found, complete=complete,
                                      project=str(app.config.project), builder=app.builder.name):
        logger.warning("%s", problem, type="evaldemo", subtype="report")


def setup(app: Sphinx) -> None:
    """Register the ``evaldemo`` directive, its nodes and its events (it starts nothing)."""
    freezing.freeze_at_exit()
    app.add_enumerable_node(
        evaldemo_example, "evaldemo", example_title,
        html=(visit_example_html, depart_example_html),
    )
    app.add_node(evaldemo_panels)
    app.add_node(evaldemo_output, html=(visit_output_html, None), text=(visit_output_text, None))
    app.add_node(evaldemo_panel, html=(visit_panel_html, depart_panel_html))
    app.add_node(evaldemo_code, html=(visit_code_html, None))
    app.add_node(evaldemo_fold, html=(visit_fold_html, depart_fold_html))
    app.add_node(evaldemo_grid, html=(visit_grid_html, None))
    app.add_node(evaldemo_chart, html=(visit_chart_html, None))
    app.add_node(report.evaldemo_report)
    app.add_node(node_kinds.evaldemo_module, html=(node_kinds.visit_module_html, None))
    left_out = (node_kinds.skip, None)
    app.add_node(node_kinds.evaldemo_download,
                 html=(node_kinds.visit_download_html, node_kinds.depart_download_html),
                 latex=left_out, text=left_out, man=left_out, texinfo=left_out)
    app.add_directive("evaldemo", EvalDemoDirective)
    app.add_directive("evaldemo-report", report.ReportDirective)
    app.add_event("evaldemo-record")
    app.connect("evaldemo-record", on_record)
    app.add_env_collector(ExampleCollector)
    app.connect("config-inited", on_config, priority=200)  # soon after the settings are checked
    app.connect("env-before-read-docs", on_before_read)
    app.connect("env-before-read-docs", freezing.on_before_read, priority=999)
    app.connect("env-get-outdated", on_outdated)
    app.connect("env-updated", on_env_updated)
    app.connect("doctree-resolved", on_resolved)
    app.connect("build-finished", on_finished)

"""The one place that wires the extension into Sphinx: config, directive, nodes, events."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from docutils import nodes as docutils_nodes
from sphinx.util import logging
from sphinx.util.display import status_iterator

from . import __version__, claims, config, execution, report
from .cache import Cache, fingerprint
from .collector import ExampleCollector, examples
from .config import EvalDemoConfig
from .directive import EvalDemoDirective
from .model import ExampleRequest, ExampleResult
from .nodes import (
    depart_example_html,
    depart_panel_html,
    evaldemo_example,
    evaldemo_output,
    evaldemo_panel,
    evaldemo_panels,
    example_title,
    visit_example_html,
    visit_output_html,
    visit_panel_html,
)
from .options import raised_as_expected
from .pool import Pool, default_size
from .reference import ConfigTableDirective
from .render import failure_nodes, output_nodes, problem_nodes

if TYPE_CHECKING:
    from docutils import nodes
    from sphinx.application import Sphinx
    from sphinx.config import Config
    from sphinx.environment import BuildEnvironment

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


@dataclass
class BuildState:
    """What one build knows beyond the environment: settings, results, the pool."""

    settings: EvalDemoConfig
    cache: Cache
    fingerprint: str
    srcdir: str
    reading: set[str] = field(default_factory=set)
    results: dict[str, ExampleResult] = field(default_factory=dict)
    ran_keys: set[str] = field(default_factory=set)
    #: runs submitted while Sphinx was still reading (serial builds only)
    pending: dict[str, Future[ExampleResult]] = field(default_factory=dict)
    pool: Pool | None = None
    main_pid: int = field(default_factory=os.getpid)
    ran: int = 0
    cached: int = 0
    failed: int = 0
    seconds: float = 0.0
    workers_started: int = 0
    #: when the first example was submitted (the clock of the closing line)
    first_submit: float | None = None

    def open_pool(self) -> Pool:
        if self.pool is None:
            self.pool = Pool(self.settings.workers or default_size(), self.srcdir)
        return self.pool

    def submit(self, request: ExampleRequest) -> Future[ExampleResult]:
        if self.first_submit is None:
            self.first_submit = time.perf_counter()
        return self.open_pool().submit(request)

    def close_pool(self, *, abort: bool = False) -> None:
        if self.pool is not None:
            self.pool.close(abort=abort)
            self.workers_started += self.pool.started
            self.pool = None
        self.pending.clear()


_STATES: WeakKeyDictionary[Sphinx, BuildState] = WeakKeyDictionary()


def state(app: Sphinx) -> BuildState:
    return _STATES[app]


def on_config(app: Sphinx, conf: Config) -> None:
    settings, problems = EvalDemoConfig.from_sphinx(conf)
    for problem in problems:
        logger.warning(problem, type="evaldemo", subtype="config")
    cache_dir = Path(app.doctreedir) / "evaldemo-cache"
    if settings.cache_dir:
        cache_dir = Path(app.confdir, os.fspath(settings.cache_dir))
    st = BuildState(settings, Cache(cache_dir), fingerprint(), str(app.srcdir))
    _STATES[app] = st
    atexit.register(st.close_pool, abort=True)  # Ctrl-C skips build-finished
    conf.html_static_path.append(str(STATIC))
    conf.numfig_format.setdefault("evaldemo", "Example %s")


def on_builder(app: Sphinx) -> None:
    if app.builder.format == "html":
        app.add_css_file("evaldemo.css")


def on_before_read(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """Start workers now when examples will surely run, so torch loads while Sphinx reads."""
    st = state(app)
    st.reading = set(docnames)
    if st.settings.execute in ("auto", "force"):
        expected = _runs_ahead(env, docnames, st)
        if expected:
            st.open_pool().prestart(expected, parallel=app.parallel)


#: How a directive opens in MyST (any fence) and in reStructuredText.
_DIRECTIVE = re.compile(r"\{evaldemo\}|\.\. evaldemo::")


def _runs_ahead(env: BuildEnvironment, docnames: list[str], st: BuildState) -> int:
    """About how many examples of the pages about to be read must run.

    Known pages are judged by the examples they had (a prose edit runs nothing, so
    it starts nothing); new pages, or a clean build, by whether the cache is empty
    and how often the source opens the directive.
    """
    recorded = examples(env)
    cold = st.settings.execute == "force" or st.cache.empty()
    count = 0
    for docname in docnames:
        if docname in recorded and not cold:
            for record in recorded[docname]:
                if "request" in record:
                    request = ExampleRequest.from_dict(record["request"])
                    count += not st.cache.has(request.key(st.fingerprint))
        elif cold:
            count += _directives_in(env, docname)
    return count


def _directives_in(env: BuildEnvironment, docname: str) -> int:
    try:
        text = Path(env.doc2path(docname)).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    return len(_DIRECTIVE.findall(text))


def on_request(app: Sphinx, request: ExampleRequest) -> None:
    """A directive recorded an example: in a serial build, start it right away.

    The worker's torch import and the run then overlap Sphinx's reading of the
    remaining pages. Under ``-j`` the directive runs in a forked reader, where no
    pool may be started; those examples run in ``env-updated``.
    """
    st = state(app)
    if os.getpid() != st.main_pid or st.settings.execute not in ("auto", "force"):
        return
    key = request.key(st.fingerprint)
    if key in st.pending:
        return
    if st.settings.execute == "force" or not st.cache.has(key):
        st.pending[key] = st.submit(request)


def _jobs(env: BuildEnvironment, docnames: set[str], fp: str) -> list[execution.Job]:
    jobs = []
    recorded = examples(env)
    for docname in sorted(docnames):
        for record in recorded.get(docname, ()):
            if "request" not in record:
                continue  # its options were wrong: it never runs
            request = ExampleRequest.from_dict(record["request"])
            jobs.append(
                execution.Job(
                    request.key(fp), request, docname, record["lineno"],
                    record["code_line"], record["raises"], tuple(record.get("expect", ())),
                )
            )
    return jobs


def on_env_updated(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Run (or fetch) the examples of the pages read in this build, then stop the pool."""
    st = state(app)
    jobs = _jobs(env, st.reading, st.fingerprint)
    if not jobs or st.settings.execute == "never":
        return []
    started = time.perf_counter()
    outcomes = execution.obtain(
        jobs, cache=st.cache, submit=st.submit, mode=st.settings.execute, pending=st.pending
    )
    problems: list[tuple[str, int, str, str]] = []
    try:
        for outcome in status_iterator(
            outcomes, "evaldemo: running examples... ", "darkgreen", len(jobs),
            app.verbosity, stringify_func=lambda o: f"{o.job.docname}:{o.job.lineno}",
        ):
            st.results[outcome.job.key] = outcome.result
            st.ran += outcome.ran
            if outcome.ran:
                st.ran_keys.add(outcome.job.key)
            st.cached += outcome.source == "cache"
            found = execution.diagnose(outcome.job, outcome.result)
            st.failed += bool(found)
            problems += [(outcome.job.docname, line, message, kind) for message, line, kind in found]
    except BaseException:
        st.close_pool(abort=True)
        raise
    finally:
        st.close_pool()
        st.seconds += time.perf_counter() - min(started, st.first_submit or started)
        st.first_submit = None
    for docname, line, message, kind in sorted(problems, key=lambda p: (p[0], p[1])):  # page order
        logger.warning(
            "%s", message, location=(docname, line), type="evaldemo", subtype=kind
        )
    return []


def _report_rows(app: Sphinx, fromdoc: str) -> list[list[Any]]:
    st = state(app)
    rows: list[list[Any]] = []
    jobs = {(j.docname, j.lineno): j for j in _jobs(app.env, set(app.env.found_docs), st.fingerprint)}
    for docname, record in sorted(
        ((d, r) for d, records in examples(app.env).items() for r in records),
        key=lambda item: (item[0], item[1]["lineno"]),
    ):
        link: Any = docname
        with contextlib.suppress(Exception):  # a builder without page links: plain text
            uri = app.builder.get_relative_uri(fromdoc, docname)
            link = docutils_nodes.reference("", docname, refuri=uri, internal=True)
        job = jobs.get((docname, record["lineno"]))
        if job is None:
            rows.append([link, str(record["lineno"]), "not run: " + record.get("problem", ""), "", "", "", ""])
            continue
        result = st.results.get(job.key) or st.cache.get(job.key)
        rows.append([
            link, str(job.lineno), report.status(job, result),
            "run" if job.key in st.ran_keys else ("cache" if result else ""),
            f"{result.seconds * 1000:.1f} ms" if result else "",
            report.per_mode(result, report.milliseconds),
            report.per_mode(result, report.megabytes),
        ])
    return rows


def on_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    st = state(app)
    for placeholder in list(doctree.findall(report.evaldemo_report)):
        rows = _report_rows(app, docname)
        placeholder.replace_self(report.table(report.HEADERS, report.WIDTHS, rows))
    for node in doctree.findall(evaldemo_example):
        request = node.get("request")
        if request is None or node.get("rendered") or st.settings.execute == "never":
            continue
        node["rendered"] = True
        key = ExampleRequest.from_dict(request).key(st.fingerprint)
        result = st.results.get(key) or st.cache.get(key)
        if result is None:
            node += problem_nodes("no result is stored for this example; rebuild with -E to run it")
            continue
        failure = result.failure
        produced: list[nodes.Node] = []
        if not node["hide_output"]:
            verdicts = claims.check(tuple(node.get("expect", ())), result) if result.ok else []
            produced += output_nodes(result, verdicts)
        if failure is not None:
            produced.append(failure_nodes(failure, raised_as_expected(node["raises"], failure.exc_mro)))
        for child in produced:  # numbers, not words: keep them out of the search index
            if isinstance(child, docutils_nodes.Element):
                child["classes"].append("no-search")
        node += produced


def on_finished(app: Sphinx, exception: BaseException | None) -> None:
    st = _STATES.get(app)
    if st is None:
        return
    st.close_pool(abort=exception is not None)
    if exception is None and st.reading >= set(app.env.found_docs):
        used = {job.key for job in _jobs(app.env, set(app.env.found_docs), st.fingerprint)}
        st.cache.prune(keep=used)
    if st.ran or st.cached:
        logger.info(
            "evaldemo: %d examples ran, %d came from the cache, %d failed, "
            "%d worker%s started (%.1f s)",
            st.ran, st.cached, st.failed, st.workers_started,
            "" if st.workers_started == 1 else "s", st.seconds,
        )


def setup_extension(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("myst_parser")
    config.register(app)
    app.add_enumerable_node(
        evaldemo_example, "evaldemo", example_title,
        html=(visit_example_html, depart_example_html),
    )
    app.add_node(evaldemo_panels)
    app.add_node(evaldemo_output, html=(visit_output_html, None))
    app.add_node(evaldemo_panel, html=(visit_panel_html, depart_panel_html))
    app.add_directive("evaldemo", EvalDemoDirective)
    app.add_directive("evaldemo-report", report.ReportDirective)
    app.add_directive("evaldemo-config", ConfigTableDirective)
    app.add_node(report.evaldemo_report)
    app.add_event("evaldemo-request")
    app.connect("evaldemo-request", on_request)
    app.add_env_collector(ExampleCollector)
    app.connect("config-inited", on_config)
    app.connect("builder-inited", on_builder)
    app.connect("env-before-read-docs", on_before_read)
    app.connect("env-updated", on_env_updated)
    app.connect("doctree-resolved", on_resolved)
    app.connect("build-finished", on_finished)
    # Articles (front matter, header, meta tags, tag pages) wire themselves in.
    from . import article, tags

    article.setup(app)
    tags.setup(app)
    return {
        "version": __version__,
        "env_version": 3,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }

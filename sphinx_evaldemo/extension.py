"""The one place that wires the extension into Sphinx: config, directive, nodes, events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sphinx.util import logging
from sphinx.util.display import status_iterator

from . import __version__, config, execution
from .cache import Cache, fingerprint
from .collector import ExampleCollector, examples
from .config import EvalDemoConfig
from .directive import EvalDemoDirective
from .model import ExampleRequest, ExampleResult
from .nodes import (
    depart_panel_html,
    evaldemo_example,
    evaldemo_panel,
    evaldemo_panels,
    example_title,
    visit_panel_html,
)
from .options import raised_as_expected
from .pool import Pool, default_size
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
    pool: Pool | None = None
    ran: int = 0
    cached: int = 0
    failed: int = 0
    seconds: float = 0.0

    def open_pool(self) -> Pool:
        if self.pool is None:
            self.pool = Pool(self.settings.workers or default_size(), self.srcdir)
        return self.pool

    def close_pool(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None


_STATES: WeakKeyDictionary[Sphinx, BuildState] = WeakKeyDictionary()


def state(app: Sphinx) -> BuildState:
    return _STATES[app]


def on_config(app: Sphinx, conf: Config) -> None:
    settings, problems = EvalDemoConfig.from_sphinx(conf)
    for problem in problems:
        logger.warning(problem, type="evaldemo", subtype="config")
    cache_dir = Path(app.doctreedir) / "evaldemo-cache"
    if settings.cache_dir:
        cache_dir = Path(app.confdir, settings.cache_dir)
    _STATES[app] = BuildState(settings, Cache(cache_dir), fingerprint(), str(app.srcdir))
    conf.html_static_path.append(str(STATIC))
    conf.numfig_format.setdefault("evaldemo", "Example %s")


def on_builder(app: Sphinx) -> None:
    if app.builder.format == "html":
        app.add_css_file("evaldemo.css")


def on_before_read(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    state(app).reading = set(docnames)


def _jobs(env: BuildEnvironment, docnames: set[str], fp: str) -> list[execution.Job]:
    jobs = []
    recorded = examples(env)
    for docname in sorted(docnames):
        for record in recorded.get(docname, ()):
            request = ExampleRequest.from_dict(record["request"])
            jobs.append(
                execution.Job(
                    request.key(fp), request, docname, record["lineno"],
                    record["code_line"], record["raises"],
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
        jobs, cache=st.cache, pool=st.open_pool, mode=st.settings.execute
    )
    problems: list[tuple[str, int, str, str]] = []
    try:
        for outcome in status_iterator(
            outcomes, "evaldemo: running examples... ", "darkgreen", len(jobs),
            app.verbosity, stringify_func=lambda o: f"{o.job.docname}:{o.job.lineno}",
        ):
            st.results[outcome.job.key] = outcome.result
            st.ran += outcome.ran
            st.cached += not outcome.ran
            problem = execution.diagnose(outcome.job, outcome.result)
            if problem is not None:
                failure = outcome.result.failure
                kind = failure.kind if failure is not None else "raises"
                problems.append((outcome.job.docname, problem[1], problem[0], kind))
    finally:
        st.close_pool()
        st.seconds += time.perf_counter() - started
    st.failed += len(problems)
    for docname, line, message, kind in sorted(problems):  # page order, whatever ran first
        logger.warning(
            "%s", message, location=(docname, line), type="evaldemo", subtype=kind
        )
    return []


def on_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    st = state(app)
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
        if not node["hide_output"]:
            node += output_nodes(result)
        if failure is not None:
            node += failure_nodes(failure, raised_as_expected(node["raises"], failure.exc_mro))


def on_finished(app: Sphinx, exception: BaseException | None) -> None:
    st = _STATES.get(app)
    if st is None:
        return
    st.close_pool()
    if st.ran or st.cached:
        logger.info(
            "evaldemo: %d examples ran, %d came from the cache, %d failed (%.1f s)",
            st.ran, st.cached, st.failed, st.seconds,
        )


def setup_extension(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("myst_parser")
    config.register(app)
    app.add_enumerable_node(evaldemo_example, "evaldemo", example_title)
    app.add_node(evaldemo_panels)
    app.add_node(evaldemo_panel, html=(visit_panel_html, depart_panel_html))
    app.add_directive("evaldemo", EvalDemoDirective)
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
        "env_version": 2,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }

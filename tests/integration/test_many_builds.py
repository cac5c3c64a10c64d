"""One process, many builds: nothing of an earlier build outlives it.

A process that runs build after build (a test suite, a Dask client, a docs server)
must not keep each build's execution and results alive: they are freed with their
build, and the process's memory stays flat from one build to the next.
"""

from __future__ import annotations

import gc
import io
import shutil
import tracemalloc
import weakref
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util.docutils import docutils_namespace

from sphinx_evaldemo.examples import wiring
from tests.conftest import ROOTS

BUILDS = 5
#: bytes the process may keep per build once the first two builds have filled Sphinx's
#: and Python's own caches (interned names, import-time tables)
KEPT_PER_BUILD = 200_000


def _build(srcdir: Path, out: Path) -> tuple[weakref.ref[object], weakref.ref[object]]:
    """One full build that runs its example; weak references to its execution and to the
    cache that holds its results."""
    with docutils_namespace():  # as sphinx-build does: docutils' registries put back after
        app = Sphinx(
            str(srcdir), str(srcdir), str(out / "text"), str(out / "doctrees"), "text",
            confoverrides={"evaldemo_execute": "force"}, status=io.StringIO(),
            warning=io.StringIO(), freshenv=True,
        )
        app.build()
    run = wiring.runner(app)
    assert run.ran == 1, app._warning.getvalue()  # type: ignore[attr-defined]  # the StringIO
    (result,) = run.results.values()
    assert result.ok
    assert run.cache.get(next(iter(run.results))) is result
    return weakref.ref(run), weakref.ref(run.cache)


def _collect() -> None:
    """Collect until nothing more is freed (a cycle whose objects have finalizers, such as
    open files, is freed by the collection after the one that finalized them)."""
    while gc.collect():
        pass


def test_each_build_is_freed_and_memory_does_not_grow(tmp_path: Path) -> None:
    srcdir = tmp_path / "src"
    shutil.copytree(ROOTS / "test-basic", srcdir)
    refs = []
    sizes = []
    tracemalloc.start()
    try:
        for number in range(BUILDS):
            refs.append(_build(srcdir, tmp_path / f"build-{number}"))
            _collect()
            sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    # Sphinx's own logging handlers keep the newest application until the next one is
    # made: only the builds before it must be gone
    alive = [number for number, (run, cache) in enumerate(refs[:-1])
             if run() is not None or cache() is not None]
    assert alive == [], f"builds {alive} are still held after they ended"
    growth = sizes[-1] - sizes[1]
    assert growth < KEPT_PER_BUILD * (BUILDS - 2), f"memory grew by {growth} bytes: {sizes}"

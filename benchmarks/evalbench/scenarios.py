"""What is measured: the plain build, the floor, evaldemo's scenarios, the competitors."""

from __future__ import annotations

import json
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import common
from .builds import Build, BuildFailed, Runner
from .corpus import Page, code_edited, make_pages, prose_edited
from .flavours import Rendering, floor_script, rendering, write_tree

#: row key -> label, in table order
ROWS = {
    "plain.clean": "plain code blocks: clean build",
    "plain.prose": "plain code blocks: rebuild after a prose edit",
    "floor": "floor: the same code in one Python process (torch import included)",
    "ext.cold": "evaldemo: clean build, cold cache",
    "ext.warm": "evaldemo: clean build, warm cache",
    "ext.nochange": "evaldemo: rebuild, no change",
    "ext.prose": "evaldemo: rebuild after a prose edit",
    "ext.code": "evaldemo: rebuild after a one-example code edit",
    "ext.j2": "evaldemo: `-j 2` clean build, cold cache",
    "sphinx-gallery.clean": "sphinx-gallery: clean build",
    "sphinx-gallery.prose": "sphinx-gallery: rebuild after a prose edit",
    "sphinx-gallery.j2": "sphinx-gallery: `-j 2` clean build",
    "myst-nb.clean": "MyST-NB: clean build, cold jupyter-cache",
    "myst-nb.warm": "MyST-NB: clean build, warm jupyter-cache",
    "myst-nb.prose": "MyST-NB: rebuild after a prose edit",
    "myst-nb.j2": "MyST-NB: `-j 2` clean build, cold jupyter-cache",
    "jupyter-sphinx.clean": "jupyter-sphinx: clean build",
    "jupyter-sphinx.prose": "jupyter-sphinx: rebuild after a prose edit",
    "jupyter-sphinx.j2": "jupyter-sphinx: `-j 2` clean build",
}

COMPETITORS = {  # name -> module to import
    "sphinx-gallery": "sphinx_gallery",
    "myst-nb": "myst_nb",
    "jupyter-sphinx": "jupyter_sphinx",
}


@dataclass
class Results:
    samples: dict[int, dict[str, list[Build]]] = field(default_factory=dict)
    floor_parts: dict[int, list[dict[str, float]]] = field(default_factory=dict)
    failures: dict[tuple[int, str], str] = field(default_factory=dict)

    def add(self, size: int, key: str, build: Build) -> None:
        self.samples.setdefault(size, {}).setdefault(key, []).append(build)

    def median(self, size: int, key: str) -> float | None:
        builds = self.samples.get(size, {}).get(key)
        return statistics.median(b.seconds for b in builds) if builds else None

    def builds(self, size: int, key: str) -> list[Build]:
        return self.samples.get(size, {}).get(key, [])


class Bench:
    def __init__(self, runner: Runner, results: Results) -> None:
        self.runner = runner
        self.results = results
        self._edits = 0

    def _tree(self, label: str, render: Rendering) -> Path:
        run = self.runner.fresh(label)
        write_tree(run / "src", render.files)
        return run

    def _edit(self, run: Path, render: Rendering, page: Page) -> None:
        relative, text = render.page_file(page)
        path = run / "src" / relative
        assert path.read_text() != text, "the edit changes nothing"
        path.write_text(text, encoding="utf-8")

    def _prose(self, run: Path, render: Rendering, pages: list[Page]) -> None:
        self._edits += 1
        self._edit(run, render, prose_edited(pages[0], self._edits))

    def warm_up(self) -> None:
        """One small round, not recorded: file caches, bytecode, the kernel's page cache."""
        results, self.results = self.results, Results()
        pages = make_pages(common.PER_PAGE)
        try:
            self.plain(common.PER_PAGE, pages)
            self.floor(common.PER_PAGE, pages)
            self.evaldemo(common.PER_PAGE, pages)
        finally:
            self.results = results

    def plain(self, size: int, pages: list[Page]) -> None:
        render = rendering("plain", pages)
        run = self._tree(f"plain-{size}", render)
        self.results.add(size, "plain.clean", self.runner.sphinx(run / "src", run, what="plain clean"))
        self._prose(run, render, pages)
        self.results.add(size, "plain.prose", self.runner.sphinx(run / "src", run, what="plain prose"))

    def floor(self, size: int, pages: list[Page]) -> None:
        run = self.runner.fresh(f"floor-{size}")
        script = run / "floor.py"
        script.write_text(floor_script([e for p in pages for e in p.examples]), encoding="utf-8")
        seconds, parts = self.runner.python_script(script, "floor")
        self.results.add(size, "floor", Build(seconds, cpu=self.runner.cpu))
        self.results.floor_parts.setdefault(size, []).append(parts)

    def evaldemo(self, size: int, pages: list[Page]) -> None:
        render = rendering("evaldemo", pages)
        run = self._tree(f"evaldemo-{size}", render)
        src, cache = run / "src", f"evaldemo_cache_dir={run / 'cache'}"
        sphinx = self.runner.sphinx
        steps = [
            ("ext.cold", None, size),
            ("ext.nochange", None, 0),
            ("ext.prose", lambda: self._prose(run, render, pages), 0),
            ("ext.code", lambda: self._edit(run, render, code_edited(pages[0])), 1),
        ]
        for key, edit, expected in steps:
            if edit is not None:
                edit()
            build = sphinx(src, run / "out", "-D", cache, what=key)
            self._check(key, build, expected)
            if key == "ext.cold":
                build.example_seconds = sum(
                    json.loads(path.read_text()).get("seconds", 0.0)
                    for path in (run / "cache").glob("**/??/*.json")  # any namespace
                )
            self.results.add(size, key, build)
        warm = self._tree(f"evaldemo-warm-{size}", render)
        build = sphinx(warm / "src", warm / "out", "-D", cache, what="ext.warm")
        self._check("ext.warm", build, 0)
        self.results.add(size, "ext.warm", build)
        par = self._tree(f"evaldemo-j2-{size}", render)
        build = sphinx(par / "src", par / "out", "-j", "2", "-D",
                       f"evaldemo_cache_dir={par / 'cache'}", what="ext.j2")
        self._check("ext.j2", build, size)
        self.results.add(size, "ext.j2", build)

    def _check(self, key: str, build: Build, expected_ran: int) -> None:
        if build.ran != expected_ran or build.failed:
            print(
                f"  !! {key}: {build.ran} examples ran (expected {expected_ran}), "
                f"{build.failed} failed",
                flush=True,
            )

    def competitor(self, name: str, size: int, pages: list[Page]) -> None:
        """Clean build, prose edit (and for MyST-NB a warm cache), ``-j 2``; a failure is noted."""
        render = rendering(name, pages)
        run = self._tree(f"{name}-{size}", render)
        extra = self._jupyter_cache(name, run)
        if self._attempt(size, f"{name}.clean", run / "src", run / "out", *extra):
            self._prose(run, render, pages)
            self._attempt(size, f"{name}.prose", run / "src", run / "out", *extra)
            if name == "myst-nb":
                warm = self._tree(f"{name}-warm-{size}", render)
                self._attempt(size, f"{name}.warm", warm / "src", warm / "out", *extra)
        par = self._tree(f"{name}-j2-{size}", render)
        self._attempt(size, f"{name}.j2", par / "src", par / "out", "-j", "2",
                      *self._jupyter_cache(name, par))

    def _jupyter_cache(self, name: str, run: Path) -> tuple[str, ...]:
        """MyST-NB's cache folder, created empty beforehand.

        Under ``-j 2`` two readers that find no cache both try to create its database
        and one fails ("table settings already exists"); an empty one avoids that race.
        """
        if name != "myst-nb":
            return ()
        path = run / "jupyter-cache"
        create = f"from jupyter_cache import get_cache; get_cache({str(path)!r}).list_cache_records()"
        subprocess.run([self.runner.python, "-c", create], check=True, capture_output=True,
                       cwd=self.runner.work)
        return ("-D", f"nb_execution_cache_path={path}")

    def _attempt(self, size: int, key: str, src: Path, out: Path, *options: str) -> bool:
        try:
            build = self.runner.sphinx(src, out, *options, what=key)
        except BuildFailed as failure:
            print(f"  !! {failure}", flush=True)
            self.results.failures.setdefault((size, key), str(failure).splitlines()[0])
            return False
        self.results.add(size, key, build)
        return True



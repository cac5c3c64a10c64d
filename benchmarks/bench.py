"""Build-time benchmark: sphinx-evaldemo against plain code blocks, the raw run, and others.

One run generates a corpus of pages with small Dropout/BatchNorm models (five examples a
page) for each size asked for, renders it several ways, builds each rendering in fresh
subprocesses, and reports medians and the ratios of the targets in issue 4:

* plain ```` ```python ```` fences built by Sphinx without the extension (the static build);
* the same code run once in one plain Python process, ``import torch`` included (the floor);
* ```` ```{evaldemo} ```` with ``:input:``: clean build with a cold and with a warm cache,
  a rebuild with no change, after a prose edit, after a one-example code edit, ``-j 2``;
* with ``--competitors``: sphinx-gallery, MyST-NB (with its jupyter-cache) and
  jupyter-sphinx, when the interpreter that runs the builds can import them.

Standard library only; the builds run under ``--python`` (default: this interpreter).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PER_PAGE = 5
IMPORTS = "import torch\nimport torch.nn as nn\n"

#: Runs Sphinx's own entry point (what ``python -m sphinx`` runs), then records what the
#: Sphinx process itself cost: its peak RSS, its children's, whether torch got in, and when
#: each Sphinx event was emitted (to split the wall time into phases).
WRAPPER = """\
import time
wrapper_start = time.time()
import json, resource, sys
from sphinx.events import EventManager
from sphinx.search import IndexBuilder
spans, feed = {}, [0.0]
def timed(function, record):
    def wrapper(self, *args, **kwargs):
        start = time.time()
        try:
            return function(self, *args, **kwargs)
        finally:
            record(args, start, time.time())
    return wrapper
def event(args, start, end):
    span = spans.setdefault(str(args[0]), [start, end, 0.0, 0])
    span[1] = end
    span[2] += end - start
    span[3] += 1
def fed(args, start, end):
    feed[0] += end - start
EventManager.emit = timed(EventManager.emit, event)
IndexBuilder.feed = timed(IndexBuilder.feed, fed)
from sphinx.cmd.build import main
main_start = time.time()
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as stream:
    json.dump({
        "rc": code,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "torch_loaded": "torch" in sys.modules,
        "wrapper_start": wrapper_start, "main_start": main_start, "main_end": time.time(),
        "events": spans, "search_feed": feed[0],
    }, stream)
sys.exit(code)
"""

CLOSING = re.compile(
    r"evaldemo: (?P<ran>\d+) examples ran, (?P<cached>\d+) came from the cache, "
    r"(?P<failed>\d+) failed(?:, (?P<workers>\d+) workers? started)? \((?P<seconds>[\d.]+) s\)"
)

# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Example:
    """One small model: what varies from example to example."""

    number: int  # 1-based, over the whole corpus
    conv: bool
    width_in: int
    hidden: tuple[int, ...]
    classes: int
    p: float
    batch: int
    dropout_first: bool  # Dropout before BatchNorm (an order people do write)

    @property
    def title(self) -> str:
        kind = "convolutional" if self.conv else "fully connected"
        return f"Example {self.number}: a {kind} net, dropout {self.p:g}"

    def code(self) -> str:
        """The example's setup: it builds ``net`` (the extension calls it on the input)."""
        layers: list[str] = []
        width = 3 if self.conv else self.width_in
        for size in self.hidden:
            if self.conv:
                block = [
                    f"nn.Conv2d({width}, {size}, kernel_size=3, padding=1)",
                    f"nn.BatchNorm2d({size})",
                    "nn.ReLU()",
                    f"nn.Dropout2d(p={self.p:g})",
                ]
            else:
                block = [f"nn.Linear({width}, {size})", f"nn.BatchNorm1d({size})", "nn.ReLU()"]
                dropout = f"nn.Dropout(p={self.p:g})"
                block.insert(1 if self.dropout_first else 3, dropout)
            layers += block
            width = size
        if self.conv:
            layers += ["nn.AdaptiveAvgPool2d(1)", "nn.Flatten()"]
        layers.append(f"nn.Linear({width}, {self.classes})")
        body = "".join(f"    {layer},\n" for layer in layers)
        return f"{IMPORTS}\nnet = nn.Sequential(\n{body})\n"

    def input(self) -> str:
        if self.conv:
            return f"torch.randn({self.batch}, 3, {self.width_in}, {self.width_in})"
        return f"torch.randn({self.batch}, {self.width_in})"

    def script(self) -> str:
        """Setup, then one forward pass per mode, seeded: what a plain script would do."""
        setup = self.code().removeprefix(IMPORTS)
        return (
            f"{IMPORTS}torch.manual_seed(0)\n{setup}"
            + f"x = {self.input()}\n"
            + "net.train()\nprint(net(x))\nnet.eval()\nprint(net(x))\n"
        )

    def prose(self) -> str:
        layers = len(self.hidden)
        return (
            f"{layers} hidden block{'s' if layers > 1 else ''} of widths "
            f"{', '.join(map(str, self.hidden))}, a batch of {self.batch}. In train mode the "
            f"dropout layers zero about {self.p:.0%} of their inputs and BatchNorm uses the "
            "batch's statistics; in eval mode both step aside."
        )


def make_examples(count: int, seed: int = 4) -> list[Example]:
    """``count`` different examples; the first ``n`` are the same for every ``count``."""
    examples = []
    for number in range(1, count + 1):
        rng = random.Random(seed * 100_003 + number)
        conv = number % 3 == 0
        if conv:
            hidden = tuple(rng.choice((8, 12, 16, 24)) for _ in range(rng.randint(1, 2)))
            width_in, batch = rng.choice((12, 16, 20)), rng.choice((4, 8, 16))
        else:
            hidden = tuple(rng.choice((64, 96, 128, 192, 256)) for _ in range(rng.randint(1, 3)))
            width_in, batch = rng.choice((16, 32, 48, 64, 96)), rng.choice((8, 16, 32, 64))
        examples.append(
            Example(
                number=number,
                conv=conv,
                width_in=width_in,
                hidden=hidden,
                classes=rng.randint(2, 10),
                p=rng.choice((0.1, 0.2, 0.25, 0.3, 0.4, 0.5)),
                batch=batch,
                dropout_first=rng.random() < 0.3,
            )
        )
    return examples


@dataclass(frozen=True)
class Page:
    number: int
    intro: str
    examples: tuple[Example, ...]

    @property
    def name(self) -> str:
        return f"page_{self.number:02d}"

    @property
    def title(self) -> str:
        return f"Page {self.number}: modes at work"


def make_pages(count: int) -> list[Page]:
    examples = make_examples(count)
    pages = []
    for start in range(0, count, PER_PAGE):
        number = start // PER_PAGE + 1
        intro = (
            f"This page shows {len(examples[start:start + PER_PAGE])} small models. Each one "
            "mixes layers that behave differently in training and in evaluation, so the "
            "same input gives different outputs in the two modes."
        )
        pages.append(Page(number, intro, tuple(examples[start : start + PER_PAGE])))
    return pages


def prose_edited(page: Page, edit: int) -> Page:
    return replace(page, intro=page.intro + f" (Revised wording, edit {edit}.)")


def code_edited(page: Page) -> Page:
    """The page with its first example's dropout rate changed: that one example must re-run."""
    first = page.examples[0]
    changed = replace(first, p=0.45 if first.p != 0.45 else 0.35)
    return replace(page, examples=(changed, *page.examples[1:]))


# --------------------------------------------------------------------------- renderings

SPHINX_CONF = '''\
project = "evaldemo-bench"
extensions = {extensions!r}
exclude_patterns = ["_build"]
html_theme = "alabaster"
{extra}'''


def myst_page(page: Page, block: Callable[[Example], str]) -> str:
    parts = [f"# {page.title}\n\n{page.intro}\n"]
    for example in page.examples:
        parts.append(f"## {example.title}\n\n{example.prose()}\n\n{block(example)}")
    return "\n".join(parts)


def myst_index(pages: list[Page], header: str = "") -> str:
    entries = "\n".join(page.name for page in pages)
    return f"{header}# Benchmark corpus\n\n```{{toctree}}\n:maxdepth: 1\n\n{entries}\n```\n"


def plain_block(example: Example) -> str:
    return f"```python\n{example.code()}```\n\nRun on `{example.input()}` in both modes.\n"


def evaldemo_block(example: Example) -> str:
    return (
        f"```{{evaldemo}}\n:input: {example.input()}\n\n{example.code()}```\n\n"
        f"Run on `{example.input()}` in both modes.\n"
    )


def mystnb_block(example: Example) -> str:
    return f"```{{code-cell}} ipython3\n{example.script()}```\n"


MYSTNB_HEADER = (
    "---\nfile_format: mystnb\nkernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n"
)


def rst_page(page: Page) -> str:
    parts = [f"{page.title}\n{'=' * len(page.title)}\n\n{page.intro}\n"]
    for example in page.examples:
        body = textwrap.indent(example.script(), "   ")
        parts.append(
            f"{example.title}\n{'-' * len(example.title)}\n\n{example.prose()}\n\n"
            f".. jupyter-execute::\n\n{body}"
        )
    return "\n".join(parts)


def rst_index(pages: list[Page]) -> str:
    entries = "".join(f"   {page.name}\n" for page in pages)
    return f"Benchmark corpus\n================\n\n.. toctree::\n   :maxdepth: 1\n\n{entries}"


def gallery_page(page: Page) -> str:
    """One sphinx-gallery script per page: a docstring, then a text cell and code per example."""
    parts = [f'"""\n{page.title}\n{"=" * len(page.title)}\n\n{page.intro}\n"""\n']
    for example in page.examples:
        prose = textwrap.fill(example.prose(), 86)
        text = "\n".join(f"# {line}" for line in prose.splitlines())
        parts.append(
            f"# %%\n# {example.title}\n# {'-' * len(example.title)}\n#\n{text}\n\n"
            f"{example.script()}"
        )
    return "\n".join(parts)


@dataclass
class Rendering:
    """A source tree (path -> text) and how one page of it is written after an edit."""

    files: dict[str, str]
    page_file: Callable[[Page], tuple[str, str]]


#: rendering -> (path in the source tree, text) of one page
PAGE_FILES: dict[str, Callable[[Page], tuple[str, str]]] = {
    "plain": lambda p: (f"{p.name}.md", myst_page(p, plain_block)),
    "evaldemo": lambda p: (f"{p.name}.md", myst_page(p, evaldemo_block)),
    "myst-nb": lambda p: (f"{p.name}.md", MYSTNB_HEADER + myst_page(p, mystnb_block)),
    "jupyter-sphinx": lambda p: (f"{p.name}.rst", rst_page(p)),
    "sphinx-gallery": lambda p: (f"examples/{p.name}.py", gallery_page(p)),
}


def rendering(kind: str, pages: list[Page]) -> Rendering:
    if kind == "plain":
        conf = SPHINX_CONF.format(extensions=["myst_parser"], extra="")
        index = {"index.md": myst_index(pages)}
    elif kind == "evaldemo":
        conf = SPHINX_CONF.format(extensions=["sphinx_evaldemo"], extra="")
        index = {"index.md": myst_index(pages)}
    elif kind == "myst-nb":
        extra = 'nb_execution_mode = "cache"\nnb_execution_timeout = 300\n'
        conf = SPHINX_CONF.format(extensions=["myst_nb"], extra=extra)
        index = {"index.md": myst_index(pages)}
    elif kind == "jupyter-sphinx":
        extra = 'jupyter_execute_default_kernel = "python3"\n'
        conf = SPHINX_CONF.format(extensions=["jupyter_sphinx"], extra=extra)
        index = {"index.rst": rst_index(pages)}
    elif kind == "sphinx-gallery":
        extra = textwrap.dedent("""\
            sphinx_gallery_conf = {
                "examples_dirs": "examples",
                "gallery_dirs": "auto_examples",
                "filename_pattern": "/",
                "plot_gallery": "True",
                "image_scrapers": (),
                "download_all_examples": False,
                "show_memory": False,
                "remove_config_comments": True,
            }
            exclude_patterns = ["_build", "examples"]
            """)
        conf = SPHINX_CONF.format(extensions=["sphinx_gallery.gen_gallery"], extra=extra)
        index = {
            "index.rst": "Benchmark corpus\n================\n\n.. toctree::\n\n   auto_examples/index\n",
            "examples/README.rst": "Examples\n========\n",
        }
    else:
        raise ValueError(kind)
    page_file = PAGE_FILES[kind]
    files = {"conf.py": conf, **index}
    files.update(page_file(page) for page in pages)
    return Rendering(files, page_file)


def floor_script(examples: list[Example]) -> str:
    """All examples in one process, each in its own function (a fresh namespace)."""
    functions = "\n\n".join(
        f"def example_{e.number:03d}():\n{textwrap.indent(e.script(), '    ')}" for e in examples
    )
    names = ", ".join(f"example_{e.number:03d}" for e in examples)
    return (
        "import json\nimport sys\nimport time\n\n"
        "started = time.perf_counter()\nimport torch\nimport torch.nn as nn\n"
        "imported = time.perf_counter()\n\n\n"
        f"{functions}\n\n"
        f"for example in ({names},):\n    example()\n"
        "done = time.perf_counter()\n"
        'print("floor-timing", json.dumps({"import": imported - started, '
        '"examples": done - imported}), file=sys.stderr)\n'
    )


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- running


class BuildFailed(RuntimeError):
    """A build or script exited with a non-zero status."""


@dataclass
class Build:
    seconds: float
    cpu: float | None = None  # user + system seconds, the process and its descendants
    stdout: str = ""
    ran: int | None = None
    cached: int | None = None
    failed: int | None = None
    maxrss_mb: float | None = None
    children_maxrss_mb: float | None = None
    torch_loaded: bool | None = None
    warnings: int = 0
    closing_seconds: float | None = None  # the "(T s)" of evaldemo's closing line
    workers: int | None = None  # workers started, when the closing line says
    example_seconds: float | None = None  # the examples' own run times, summed (from the cache)
    phases: dict[str, float] = field(default_factory=dict)


#: phase -> what it covers, in the order of a build
PHASES = {
    "start": "interpreter start-up and Sphinx's imports",
    "init": "configuration, extensions' setup, builder, environment",
    "read": "reading and parsing the pages",
    "env-updated": "env-updated handlers (evaldemo: waiting for the examples, stopping workers)",
    "write": "resolving and writing pages",
    "search": "of which: feeding the search index",
    "finish": "build-finished handlers, search index and static files",
    "exit": "interpreter shutdown",
}


def phases(info: dict[str, Any], launched: float, ended: float) -> dict[str, float]:
    """Split one build's wall time at its events (times are seconds since the epoch)."""
    events: dict[str, list[float]] = info["events"]
    main_start, main_end = info["main_start"], info["main_end"]

    def at(name: str, index: int, default: float) -> float:
        return events[name][index] if name in events else default

    read_start = at("env-before-read-docs", 0, at("env-updated", 0, main_start))
    updated_start = at("env-updated", 0, read_start)
    updated_end = at("env-updated", 1, updated_start)
    finished = at("build-finished", 0, main_end)
    return {
        "start": main_start - launched,
        "init": read_start - main_start,
        "read": updated_start - read_start,
        "env-updated": updated_end - updated_start,
        "write": finished - updated_end,
        "search": info["search_feed"],
        "finish": main_end - finished,
        "exit": ended - main_end,
    }


class Runner:
    def __init__(self, python: str, work: Path, verbose: bool) -> None:
        self.python = python
        self.work = work
        self.verbose = verbose
        self.env = dict(os.environ)
        # One thread per process, as the extension's workers use: on 2 cores, torch's
        # default of one thread per core, next to any other busy process, makes these small
        # examples up to 100 times slower (threads spin waiting for each other).
        self.env.setdefault("OMP_NUM_THREADS", "1")
        self._serial = 0
        self.launched = self.ended = self.cpu = 0.0  # of the last subprocess

    def fresh(self, label: str) -> Path:
        self._serial += 1
        path = self.work / f"{self._serial:04d}-{label}"
        path.mkdir(parents=True)
        return path

    def _run(self, command: list[str], what: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        self.launched = time.time()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=self.env,
                              cwd=self.work, check=False)
        seconds = time.perf_counter() - started
        self.ended = time.time()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU time of the process and every descendant it waited for (workers, kernels)
        self.cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if done.returncode != 0:
            raise BuildFailed(
                f"{what} failed with status {done.returncode}:\n{done.stdout[-3000:]}\n"
                f"{done.stderr[-3000:]}"
            )
        if self.verbose:
            print(f"    {what}: {seconds:.2f} s", flush=True)
        return seconds, done

    def sphinx(self, src: Path, run: Path, *options: str, what: str = "sphinx") -> Build:
        """One ``sphinx-build -b html`` in a subprocess; out and doctrees live under ``run``."""
        stats = run / "stats.json"
        command = [
            self.python, "-c", WRAPPER, str(stats), "-b", "html",
            str(src), str(run / "html"), "-d", str(run / "doctrees"), *options,
        ]
        seconds, done = self._run(command, what)
        info = json.loads(stats.read_text())
        build = Build(
            seconds,
            stdout=done.stdout,
            maxrss_mb=info["maxrss_kb"] / 1024,
            children_maxrss_mb=info["children_maxrss_kb"] / 1024,
            torch_loaded=info["torch_loaded"],
            warnings=done.stderr.count("WARNING"),
            phases=phases(info, self.launched, self.ended),
            cpu=self.cpu,
        )
        closing = CLOSING.search(done.stdout)
        if closing:
            build.ran, build.cached, build.failed = (
                int(closing[name]) for name in ("ran", "cached", "failed")
            )
            build.workers = int(closing["workers"]) if closing["workers"] else None
            build.closing_seconds = float(closing["seconds"])
        elif "examples ran" in done.stdout:
            raise RuntimeError(f"{what}: the closing line changed; update CLOSING:\n{done.stdout}")
        elif "sphinx_evaldemo" in (src / "conf.py").read_text():
            build.ran = build.cached = build.failed = 0  # nothing read, nothing to say
        if build.warnings and self.verbose:
            print(textwrap.indent(done.stderr[-2000:], "      "), flush=True)
        return build

    def python_script(self, script: Path, what: str) -> tuple[float, dict[str, float]]:
        seconds, done = self._run([self.python, str(script)], what)
        found = re.search(r"floor-timing (\{.*\})", done.stderr)
        return seconds, json.loads(found.group(1)) if found else {}


# --------------------------------------------------------------------------- scenarios

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
        pages = make_pages(PER_PAGE)
        try:
            self.plain(PER_PAGE, pages)
            self.floor(PER_PAGE, pages)
            self.evaldemo(PER_PAGE, pages)
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
                    for path in (run / "cache").glob("??/*.json")
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


# --------------------------------------------------------------------------- the report


def machine(python: str, competitors: list[str], package: str) -> dict[str, str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    probe = (
        "import json, sys\nfrom importlib import metadata\n"
        "def v(name):\n    try:\n        return metadata.version(name)\n"
        "    except metadata.PackageNotFoundError:\n        return None\n"
        f"names = ['torch', 'sphinx', 'myst-parser', 'docutils', *{competitors!r}]\n"
        "print(json.dumps({'python': sys.version.split()[0], "
        "**{n: v(n) for n in names}}))\n"
    )
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True,
                          cwd=tempfile.gettempdir())
    versions: dict[str, str] = json.loads(done.stdout)
    return {
        "cpu": cpu, "cores": str(cores), "os": platform.platform(terse=True),
        "sphinx-evaldemo": package, **versions,
    }


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def revision() -> str:
    """The commit the working tree's package stands on, and whether its files differ from it."""
    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown revision"
    dirty = git("status", "--porcelain", "--", "sphinx_evaldemo")
    return commit + (" + uncommitted changes to sphinx_evaldemo/" if dirty else "")


def locate(python: str) -> Path | None:
    """Where ``python`` imports sphinx_evaldemo from (run outside any checkout)."""
    done = subprocess.run(
        [python, "-c", "import sphinx_evaldemo; print(sphinx_evaldemo.__file__)"],
        capture_output=True, text=True, check=False, cwd=tempfile.gettempdir(),
    )
    return Path(done.stdout.strip()).resolve().parent if done.returncode == 0 else None


def use_package(python: str, rev: str | None, out: Path) -> str:
    """Make the builds import the package at ``rev`` (or the working tree); describe it.

    Others may be editing the working tree while a benchmark runs; ``--rev HEAD`` measures
    a fixed snapshot instead, exported with ``git archive`` and put first on PYTHONPATH.
    """
    if rev:
        commit = git("rev-parse", "--short", rev)
        if not commit:
            raise SystemExit(f"unknown revision {rev!r}")
        root = out / f"package-{commit}"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "sphinx_evaldemo"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        # as an installed or long-used checkout would be (PYTHONDONTWRITEBYTECODE may be set)
        subprocess.run([python, "-m", "compileall", "-q", str(root)], check=True)
        wanted, described = root / "sphinx_evaldemo", f"{commit} (exported)"
    else:
        wanted, described = REPO / "sphinx_evaldemo", revision()
    if locate(python) != wanted.resolve():
        path = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(wanted.parent), path]))
    found = locate(python)
    if found != wanted.resolve():
        raise SystemExit(f"{python} imports sphinx_evaldemo from {found}, not from {wanted}")
    return described


def machine_line(info: dict[str, str]) -> str:
    fixed = ("cpu", "cores", "os", "python")
    versions = ", ".join(f"{k} {v}" for k, v in info.items() if k not in fixed and v)
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['os']}; Python {info['python']}; "
        f"{versions}"
    )


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _ran_note(builds: list[Build]) -> str:
    runs = sorted({b.ran for b in builds if b.ran is not None})
    if not runs:
        return ""
    return f" · {'/'.join(map(str, runs))} ran"


def check(ok: bool) -> str:
    return "✓" if ok else "✗"


@dataclass
class Target:
    label: str
    values: dict[int, tuple[str, bool] | None]


def targets(results: Results, sizes: list[int]) -> tuple[list[Target], list[Target]]:
    med = results.median
    rows: list[Target] = []

    def per_size(label: str, compute: Callable[[int], tuple[str, bool] | None]) -> None:
        rows.append(Target(label, {size: compute(size) for size in sizes}))

    def ratio(
        size: int, top: str, bottom: list[str], limit: float, stretch: float | None = None
    ) -> tuple[str, bool] | None:
        a, parts = med(size, top), [med(size, k) for k in bottom]
        if a is None or None in parts:
            return None
        value = a / sum(p for p in parts if p is not None)
        text = f"{value:.2f}" + (f" (stretch {check(value <= stretch)})" if stretch else "")
        return text, value <= limit

    per_size("clean, cold cache ≤ 1.2 x (plain + floor); stretch ≤ 1.0",
             lambda s: ratio(s, "ext.cold", ["plain.clean", "floor"], 1.2, 1.0))
    per_size("clean, warm cache ≤ 1.15 x plain", lambda s: ratio(s, "ext.warm", ["plain.clean"], 1.15))
    per_size("prose edit ≤ 1.15 x plain's prose rebuild",
             lambda s: ratio(s, "ext.prose", ["plain.prose"], 1.15))

    def ran_right(size: int) -> tuple[str, bool] | None:
        prose = results.builds(size, "ext.prose")
        code = results.builds(size, "ext.code")
        warm = results.builds(size, "ext.warm")
        if not prose or not code:
            return None
        ok = (all(b.ran == 0 for b in prose) and all(b.ran == 1 for b in code)
              and all(b.ran == 0 and not b.children_maxrss_mb and not b.workers for b in warm))
        return (f"{_ran_note(prose)[3:]} / {_ran_note(code)[3:]} / "
                f"{_ran_note(warm)[3:]}"), ok

    per_size("examples run: prose edit 0 / code edit 1 / warm 0 (no worker)", ran_right)

    def parallel(size: int) -> tuple[str, bool] | None:
        j2, j1 = med(size, "ext.j2"), med(size, "ext.cold")
        if j2 is None or j1 is None:
            return None
        return f"{j2 / j1:.2f}", j2 < j1

    per_size("`-j 2` cold < `-j 1` cold (ratio)", parallel)

    def memory(size: int) -> tuple[str, bool] | None:
        plain = [b.maxrss_mb for b in results.builds(size, "plain.clean") if b.maxrss_mb]
        ext = [b.maxrss_mb for b in results.builds(size, "ext.cold") if b.maxrss_mb]
        torch_in = any(b.torch_loaded for k in ("ext.cold", "ext.warm", "ext.j2")
                       for b in results.builds(size, k))
        if not plain or not ext:
            return None
        diff = statistics.median(ext) - statistics.median(plain)
        text = f"{diff:+.1f} MB" + (" (torch imported!)" if torch_in else "")
        return text, diff <= 30 and not torch_in

    per_size("Sphinx process peak RSS: evaldemo cold - plain ≤ 30 MB, no torch", memory)

    return rows, growth_rows(results, sizes)


def growth_rows(results: Results, sizes: list[int]) -> list[Target]:
    """What each example added between the smallest and the largest corpus, against the floor's
    and the plain build's growth; in wall time (the target) and in CPU time (steadier)."""
    low, high = min(sizes), max(sizes)
    if low == high:
        return []
    rows = []
    for metric, pick in (("wall", lambda b: b.seconds), ("CPU", lambda b: b.cpu)):
        def med(size: int, key: str, pick: Callable[[Build], float | None] = pick) -> float | None:
            values = [v for b in results.builds(size, key) if (v := pick(b)) is not None]
            return statistics.median(values) if values else None

        needed = [med(s, k) for s in (low, high) for k in ("ext.cold", "floor", "plain.clean")]
        if None in needed:
            continue
        e0, f0, p0, e1, f1, p1 = (n for n in needed if n is not None)
        added, reference = e1 - e0, (f1 - f0) + (p1 - p0)
        per_example = added / (high - low) * 1000
        per_reference = reference / (high - low) * 1000
        label = (f"cost growth {low}→{high} ({metric} time): Δevaldemo cold / "
                 "(Δfloor + Δplain) ≤ 1.2")
        if reference <= 0:
            value = (f"undetermined: floor + plain did not grow ({per_reference:+.0f} ms/ex.; "
                     f"evaldemo {per_example:+.0f} ms/ex.)", False)
        else:
            ratio = added / reference
            value = (f"{ratio:.2f} ({per_example:.0f} against {per_reference:.0f} ms per "
                     "added example)", ratio <= 1.2)
        rows.append(Target(label, {high: value}))
    # The floor's total hides its growth (a few ms an example) under the noise of
    # ``import torch``; the script also times its examples alone, which is steadier.
    def inside(size: int) -> float | None:
        parts = results.floor_parts.get(size) or []
        return statistics.median(p["examples"] for p in parts) if parts else None

    needed = [results.median(low, "ext.cold"), results.median(high, "ext.cold"), inside(low),
              inside(high), results.median(low, "plain.clean"), results.median(high, "plain.clean")]
    if None not in needed:
        e0, e1, f0, f1, p0, p1 = (n for n in needed if n is not None)
        reference = (f1 - f0) + (p1 - p0)
        if reference > 0:
            ratio = (e1 - e0) / reference
            label = (f"cost growth {low}→{high}, floor's examples timed inside the script "
                     "(its import left out): same ratio ≤ 1.2")
            value = (f"{ratio:.2f} ({(e1 - e0) / (high - low) * 1000:.0f} against "
                     f"{reference / (high - low) * 1000:.0f} ms per added example)", ratio <= 1.2)
            rows.append(Target(label, {high: value}))
    return rows


def report(results: Results, sizes: list[int], info: dict[str, str], header: str) -> str:
    pages = {size: -(-size // PER_PAGE) for size in sizes}
    heads = [f"{size} ex. ({pages[size]} p.)" for size in sizes]
    lines = [header, "", f"Machine: {machine_line(info)}", ""]
    lines += ["| build | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(sizes)]
    for key, label in ROWS.items():
        if not any(results.builds(size, key) or (size, key) in results.failures
                   for size in sizes):
            continue
        cells = []
        for size in sizes:
            builds = results.builds(size, key)
            note = _ran_note(builds) if key.startswith("ext.") else ""
            count = f" (n={len(builds)})" if builds and len(builds) != _most(results) else ""
            failed = " (failed)" if (size, key) in results.failures else ""
            cells.append(seconds(results.median(size, key)) + note + count + failed)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| target (ratio of medians) | " + " | ".join(heads) + " | met |",
              "|---|" + "---:|" * len(sizes) + ":---:|"]
    rows, growth = targets(results, sizes)
    for row in [*rows, *growth]:
        cells = []
        for size in sizes:
            value = row.values.get(size)
            cells.append("" if value is None else f"{value[0]} {check(value[1])}")
        known = [v[1] for v in row.values.values() if v is not None]
        lines.append(f"| {row.label} | " + " | ".join(cells) + f" | {check(all(known)) if known else '—'} |")
    lines += ["", "| Sphinx process | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(sizes)]
    for key, label in (("plain.clean", "peak RSS, plain build"), ("ext.cold", "peak RSS, evaldemo cold build"),
                       ("ext.warm", "peak RSS, evaldemo warm build")):
        cells = []
        for size in sizes:
            rss = [b.maxrss_mb for b in results.builds(size, key) if b.maxrss_mb]
            cells.append(f"{statistics.median(rss):.0f} MB" if rss else "—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for size in sizes:
        loaded = [b.torch_loaded for k in ("ext.cold", "ext.warm", "ext.j2") for b in results.builds(size, k)]
        cells.append("—" if not loaded else ("yes ✗" if any(loaded) else "no ✓"))
    lines.append("| `torch` in the Sphinx process's `sys.modules` | " + " | ".join(cells) + " |")
    floor = []
    for size in sizes:
        parts = results.floor_parts.get(size) or []
        if parts:
            imp = statistics.median(p["import"] for p in parts)
            run = statistics.median(p["examples"] for p in parts)
            floor.append(f"{imp:.2f} s + {run:.2f} s ({run / size * 1000:.1f} ms/ex.)")
        else:
            floor.append("—")
    lines.append("| floor, inside: `import torch` + the examples | " + " | ".join(floor) + " |")
    inside = []
    for size in sizes:
        cold = results.builds(size, "ext.cold")
        runs = [b.example_seconds for b in cold if b.example_seconds is not None]
        waits = [b.closing_seconds for b in cold if b.closing_seconds is not None]
        if runs and waits:
            run = statistics.median(runs)
            inside.append(
                f"{run:.2f} s ({run / size * 1000:.1f} ms/ex.); wait {statistics.median(waits):.2f} s"
            )
        else:
            inside.append("—")
    lines.append(
        "| evaldemo cold, inside: the examples' run times in the workers; "
        "wait after reading (closing line) | " + " | ".join(inside) + " |"
    )
    lines += ["", *cpu_table(results, sizes, heads)]
    if results.failures:
        lines += ["", "Failed builds (not in the medians):", ""]
        lines += [f"- {key}, {size} examples: {why}" for (size, key), why in results.failures.items()]
    lines += ["", *phase_table(results, max(sizes))]
    return "\n".join(lines) + "\n"


def cpu_table(results: Results, sizes: list[int], heads: list[str]) -> list[str]:
    """CPU seconds (user + system, with the workers and kernels): less sensitive to other load."""
    lines = [
        "CPU time (user + system of the build and all its child processes; medians):",
        "",
        "| build | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for key, label in ROWS.items():
        cells = []
        for size in sizes:
            cpu = [b.cpu for b in results.builds(size, key) if b.cpu is not None]
            cells.append(seconds(statistics.median(cpu)) if cpu else "—")
        if any(c != "—" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def phase_table(results: Results, size: int) -> list[str]:
    """Medians of each phase of each Sphinx build, for one size."""
    names = list(PHASES)
    lines = [
        f"Where the time goes, {size} examples (medians, seconds; `search` is part of `write`):",
        "",
        "| build | " + " | ".join(names) + " | total |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for key, label in ROWS.items():
        builds = [b for b in results.builds(size, key) if b.phases]
        if not builds:
            continue
        cells = [f"{statistics.median(b.phases[n] for b in builds):.2f}" for n in names]
        total = statistics.median(b.seconds for b in builds)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {total:.2f} |")
    return lines


def _most(results: Results) -> int:
    counts = [len(b) for per in results.samples.values() for b in per.values()]
    return max(counts) if counts else 0


def dump(results: Results) -> dict[str, object]:
    return {
        str(size): {
            key: [
                {k: v for k, v in vars(b).items() if k != "stdout"} for b in builds
            ]
            for key, builds in per.items()
        }
        for size, per in results.samples.items()
    } | {
        "floor_parts": {str(k): v for k, v in results.floor_parts.items()},
        "failures": [[size, key, why] for (size, key), why in results.failures.items()],
    }


def load(raw: dict[str, Any]) -> Results:
    """The inverse of :func:`dump`."""
    results = Results()
    for size, per in raw.items():
        if size.isdigit():
            for key, builds in per.items():
                for build in builds:
                    results.add(int(size), key, Build(**build))
    results.floor_parts = {int(k): v for k, v in raw.get("floor_parts", {}).items()}
    results.failures = {(size, key): why for size, key, why in raw.get("failures", [])}
    return results


# --------------------------------------------------------------------------- main


def importable(python: str, module: str) -> bool:
    done = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False,
                          cwd=tempfile.gettempdir())
    return done.returncode == 0


@contextlib.contextmanager
def scratch(out: Path, keep: bool) -> Iterator[Path]:
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 100],
                        help="numbers of examples (five a page)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--out", type=Path, default=HERE / "_runs", help="where reports go")
    parser.add_argument("--competitors", action="store_true",
                        help="also build with sphinx-gallery, MyST-NB, jupyter-sphinx")
    parser.add_argument("--competitor-repeats", type=int, default=None,
                        help="runs of each competitor measurement (default: --repeats)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter that runs the builds and the floor")
    parser.add_argument("--rev", metavar="REV",
                        help="measure the package as committed at REV (e.g. HEAD), not the "
                             "working tree")
    parser.add_argument("--keep", action="store_true", help="keep the generated trees")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-build timings")
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="only print the report of an earlier run's latest.json")
    args = parser.parse_args(argv)
    if args.from_json:
        raw = json.loads(args.from_json.read_text())
        print(report(load(raw["results"]), raw["sizes"], raw["machine"], raw["header"]))
        return 0
    sizes = sorted(set(args.sizes))
    python = args.python
    args.out = args.out.resolve()
    package = use_package(python, args.rev, args.out)
    competitors: list[str] = []
    if args.competitors:
        for name, module in COMPETITORS.items():
            if importable(python, module):
                competitors.append(name)
            else:
                print(f"skipping {name}: {python} cannot import {module}", flush=True)
        if "myst-nb" in competitors and not importable(python, "ipykernel"):
            print("skipping myst-nb: no ipykernel (it needs a Jupyter kernel)", flush=True)
            competitors.remove("myst-nb")
        if "jupyter-sphinx" in competitors and not importable(python, "ipykernel"):
            print("skipping jupyter-sphinx: no ipykernel", flush=True)
            competitors.remove("jupyter-sphinx")
    competitor_repeats = args.competitor_repeats or args.repeats

    info = machine(python, competitors, package)
    print(f"machine: {machine_line(info)}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results = Results()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with scratch(args.out, args.keep) as work:
        runner = Runner(python, work, verbose=not args.quiet)
        bench = Bench(runner, results)
        print("warming up", flush=True)
        bench.warm_up()
        for repeat in range(max(args.repeats, competitor_repeats if competitors else 0)):
            for size in sizes:
                pages = make_pages(size)
                print(f"run {repeat + 1}, {size} examples on {len(pages)} pages", flush=True)
                if repeat < args.repeats:
                    bench.plain(size, pages)
                    bench.floor(size, pages)
                    bench.evaldemo(size, pages)
                if repeat < competitor_repeats:
                    for name in competitors:
                        bench.competitor(name, size, pages)
    elapsed = time.perf_counter() - started
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    reps = f"medians of {args.repeats} runs"
    if competitors and competitor_repeats != args.repeats:
        reps += f" ({competitor_repeats} for the competitors)"
    header = (
        f"### Benchmark, {stamp}\n\n{PER_PAGE} examples a page; wall time of each build "
        f"(one subprocess each), {reps}; whole run {elapsed / 60:.1f} min; "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
        f"OMP_NUM_THREADS={runner.env['OMP_NUM_THREADS']}."
    )
    table = report(results, sizes, info, header)
    print()
    print(table)
    (args.out / "latest.md").write_text(table, encoding="utf-8")
    raw = {"machine": info, "sizes": sizes, "results": dump(results), "elapsed": elapsed,
           "header": header}
    (args.out / "latest.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    print(f"written: {args.out / 'latest.md'}, {args.out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The head start: a clean build with an empty cache starts its warm parent when the
configuration is read (the earliest event with the final settings; ``setup()`` starts
nothing).

Real Sphinx projects, written here, and the real worker processes, looked up in /proc.
``SphinxTestApp(...)`` runs Sphinx's start-up (the extensions' ``setup``, the config)
but not the build, so the worker processes alive right after it show whether the warm
parent got its head start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples import wiring
from tests.helpers import warnings_of

REPO = Path(__file__).resolve().parents[2]

EXAMPLE = """\
# Head start

```{evaldemo}
:input: torch.randn(4, 3)

import torch
import torch.nn as nn

net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
```
"""


def _workers() -> set[int]:
    """Warm parents that are children of this test process (not zombies)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"sphinx_evaldemo.examples.worker" in command:
            found.add(int(stat.parent.name))
    return found


def _project(root: Path, conf: str = "", page: str = EXAMPLE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "conf.py").write_text(f'project = "headstart"\nextensions = ["sphinx_evaldemo"]\n{conf}', encoding="utf-8")
    (root / "index.md").write_text(page, encoding="utf-8")
    return root


def _start(srcdir: Path, **overrides: object) -> SphinxTestApp:
    return SphinxTestApp("text", srcdir=srcdir, confoverrides=overrides or None)


def _build(app: SphinxTestApp) -> str:
    try:
        app.build()
    finally:
        app.cleanup()
    assert warnings_of(app) == []
    return (app.outdir / "index.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("executor", ["local", "a local Dask cluster"])
def test_a_clean_build_with_an_empty_cache_starts_the_worker_before_it_reads(
    tmp_path: Path, executor: str
) -> None:
    """The local executor, and a local Dask cluster, whose workers share one warm parent."""
    overrides: dict[str, object] = {}
    if executor != "local":
        pytest.importorskip("distributed")
        overrides = {"evaldemo_executor": "dask", "evaldemo_dask_scheduler": "local", "evaldemo_workers": 2}
    before = _workers()
    app = _start(_project(tmp_path / "src"), **overrides)
    started = _workers() - before
    assert len(started) == 1, "no warm parent was started during Sphinx's start-up"
    text = _build(app)
    assert "The train and eval outputs" in text
    run = wiring.runner(app)
    assert (run.ran, run.workers_started) == (1, 1)  # the build used the head-started one
    assert run.where == ("this machine" if executor == "local" else "a local Dask cluster (2 workers)")
    assert _workers() - before == set()


@pytest.mark.parametrize(
    "case", ["warm cache", "saved environment", "execute cache", "no directive", "dask executor"]
)
def test_no_head_start_unless_the_examples_will_surely_run(tmp_path: Path, case: str) -> None:
    src = _project(tmp_path / "src", page="# Prose only\n\nNo example here.\n" if case == "no directive" else EXAMPLE)
    if case in ("warm cache", "saved environment"):
        _build(_start(src))  # fills the cache and saves the environment
        if case == "warm cache":
            (src / "_build" / "doctrees" / "environment.pickle").unlink()  # a clean build again
    overrides: dict[str, object] = {}
    if case == "execute cache":
        overrides["evaldemo_execute"] = "cache"
    if case == "dask executor":
        overrides["evaldemo_executor"] = "dask"
        overrides["evaldemo_dask_scheduler"] = "tcp://127.0.0.1:9"  # never reached: nothing is built
    before = _workers()
    app = _start(src, **overrides)
    try:
        assert _workers() - before == set()
        assert wiring.runner(app)._executor is None
    finally:
        app.cleanup()


def test_the_head_start_uses_the_settings_conf_setup_changed(tmp_path: Path) -> None:
    """``conf.py``'s own ``setup()`` runs after the extension's; the head start waits for
    the configuration to be read, so it starts with the final settings, and the build
    uses the worker it started."""
    conf = "def setup(app):\n    app.config.evaldemo_workers = 1\n"
    before = _workers()
    app = _start(_project(tmp_path / "src", conf=conf))
    assert len(_workers() - before) == 1, "no warm parent was started when the configuration was read"
    assert wiring.runner(app).settings.workers == 1
    text = _build(app)
    assert "The train and eval outputs" in text
    run = wiring.runner(app)
    assert (run.ran, run.workers_started) == (1, 1)
    assert _workers() - before == set()


def test_objects_are_frozen_while_pages_are_written_and_unfrozen_after(tmp_path: Path) -> None:
    """What exists before any page is read is frozen for the collector while the pages
    are read and written, and given back when the build ends."""
    import gc

    conf = (
        "import gc\n"
        "def setup(app):\n"
        "    app.connect('doctree-resolved', lambda app, doctree, docname: app.evaldemo_frozen.append(gc.get_freeze_count()))\n"
        "    app.evaldemo_frozen = []\n"
    )
    assert gc.get_freeze_count() == 0
    app = _start(_project(tmp_path / "src", conf=conf))
    _build(app)
    frozen = app.evaldemo_frozen  # type: ignore[attr-defined]  # set by the project's conf.py
    assert frozen and all(count > 10_000 for count in frozen)
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


EXIT_SCRIPT = """\
import atexit, gc, sys
from sphinx.cmd.build import build_main

# registered before the extension's hook, so it runs after it (atexit is last-in,
# first-out): what the interpreter's last collections will find
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 10_000, flush=True))
status = build_main(sys.argv[1:])
print("frozen after the build:", gc.get_freeze_count(), flush=True)
sys.exit(status)
"""


def test_a_command_line_build_freezes_its_objects_only_at_exit(tmp_path: Path) -> None:
    """The interpreter's last collections skip what the build made; until then, nothing
    stays frozen (a process running several builds collects normally)."""
    srcdir = _project(tmp_path / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, "-b", "text", str(srcdir), str(srcdir / "_build")],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "frozen after the build: 0" in done.stdout
    assert "frozen at exit: True" in done.stdout
    assert "The train and eval outputs" in (srcdir / "_build" / "index.txt").read_text(encoding="utf-8")

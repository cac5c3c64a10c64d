"""A head start for the warm parent: on a clean build, torch loads while Sphinx starts up.

The warm parent's ``import torch`` (about a second) is the longest wait of a build that
runs examples. The Runner starts it before Sphinx reads; this module starts it earlier
still, from the extension's ``setup``, before Sphinx loads the remaining extensions,
the builder and the environment (about 0.15 s on a small project). It does so only when
the examples will surely run: a clean build (no saved environment) whose cache is local
and empty (or ``evaldemo_execute = "force"``), on this machine (the local executor, or
a local Dask cluster, whose workers share such a parent), and with the directive
somewhere in the sources. Any other build starts its worker as before, or none. The Runner, made when the configuration is read, takes the started executor over
if the settings are still the same (a ``setup()`` in ``conf.py`` may change them);
otherwise it is closed unused.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sphinx.util import logging

from ..config import EvalDemoConfig
from .cache import open_cache
from .executors import Executor, open_executor
from .runner import DIRECTIVE, runs_surely

if TYPE_CHECKING:
    from sphinx.application import Sphinx

#: Source files looked at for a directive before giving up (a huge tree: no head start).
LOOK_AT = 2000
_SUFFIXES = (".md", ".rst", ".txt", ".ipynb")
_SKIP = frozenset({"_build", "node_modules", "__pycache__", "venv"})
#: Sphinx's saved environment; a build that finds one is not a clean build.
_ENV_PICKLE = "environment.pickle"

_STARTED: WeakKeyDictionary[Sphinx, tuple[EvalDemoConfig, Executor, weakref.finalize[Any, Any]]] = WeakKeyDictionary()


def examples_in(srcdir: str | os.PathLike[str], limit: int = LOOK_AT) -> bool:
    """Whether some source file under ``srcdir`` opens the directive (stops at the first)."""
    looked = 0
    for folder, dirs, files in os.walk(srcdir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP)
        for name in files:
            if not name.endswith(_SUFFIXES):
                continue
            looked += 1
            if looked > limit:
                return False
            try:
                text = Path(folder, name).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if DIRECTIVE.search(text):
                return True
    return False


def start(app: Sphinx) -> None:
    """Start the executor now if this build will surely run examples (see the module)."""
    if (Path(app.doctreedir) / _ENV_PICKLE).exists():
        return
    with logging.suppress_logging():  # problems are reported once, when the config is read
        settings, _ = EvalDemoConfig.from_sphinx(app.config)
    if "://" in os.fspath(settings.cache_dir or ""):
        return  # a remote store: not worth its client's import this early
    on_this_machine = settings.executor == "local" or settings.scheduler() == "local"
    if not on_this_machine or not runs_surely(settings, empty_cache=True):
        return
    if not runs_surely(settings, empty_cache=False):  # only if nothing is stored yet
        cache = open_cache(settings, app.confdir, app.doctreedir, str(app.config.project))
        if not (cache.local and cache.empty()):
            return
    if not examples_in(app.srcdir):
        return
    executor = open_executor(settings, str(app.srcdir))
    executor.prestart(1, parallel=app.parallel)
    # closed if the build ends (or its app is dropped) before the Runner takes it over
    closer = weakref.finalize(app, executor.close, abort=True)
    _STARTED[app] = (settings, executor, closer)


def take(app: Sphinx, settings: EvalDemoConfig) -> Executor | None:
    """The executor started for ``app``, if its settings are still ``settings``."""
    started = _STARTED.pop(app, None)
    if started is None:
        return None
    early, executor, closer = started
    closer.detach()
    if early != settings:
        executor.close()
        return None
    return executor

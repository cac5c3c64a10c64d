"""A head start from the extension's ``setup``: torch, or the remote cache, while Sphinx starts.

The warm parent's ``import torch`` (about a second) is the longest wait of a build that
runs examples. The Runner starts it before Sphinx reads; this module starts it earlier
still, from the extension's ``setup``, before Sphinx loads the remaining extensions,
the builder and the environment (about 0.15 s on a small project). It does so only when
the examples will surely run: a clean build (no saved environment) whose cache is local
and empty (or ``evaldemo_execute = "force"``), on this machine (the local executor, or
a local Dask cluster, whose workers share such a parent), and with the directive
somewhere in the sources. Any other build starts its worker as before, or none. The
Runner, made when the configuration is read, takes the started executor over if the
settings are still the same (a ``setup()`` in ``conf.py`` may change them); otherwise it
is closed unused.

With a remote cache (an fsspec URL) the head start is the cache's instead: a helper
process reads the project's namespace (:mod:`.snapshot`) in any build that may look a
result up, and the cache opened when the configuration is read takes what it found
(the executor starts once that says what must run).
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sphinx.util import logging

from ..config import EvalDemoConfig
from . import snapshot
from .cache import default_namespace, open_cache
from .executors import Executor, open_executor
from .runner import reads_results, runs_surely
from .scan import examples_in

if TYPE_CHECKING:
    from sphinx.application import Sphinx

#: Sphinx's saved environment; a build that finds one is not a clean build.
_ENV_PICKLE = "environment.pickle"

_SNAPSHOTS: WeakKeyDictionary[Sphinx, tuple[EvalDemoConfig, str, snapshot.Snapshot]] = (
    WeakKeyDictionary())
_STARTED: WeakKeyDictionary[Sphinx, tuple[EvalDemoConfig, Executor, weakref.finalize[Any, Any]]] = WeakKeyDictionary()


def start(app: Sphinx) -> None:
    """Start the executor now if this build will surely run examples, or the snapshot
    of a remote cache (see the module)."""
    with logging.suppress_logging():  # problems are reported once, when the config is read
        settings, _ = EvalDemoConfig.from_sphinx(app.config)
    location = os.fspath(settings.cache_dir or "")
    if "://" in location and not location.startswith("file://"):
        if reads_results(settings) and examples_in(app.srcdir):
            namespace = settings.cache_namespace or default_namespace(str(app.config.project))
            found = snapshot.start(location, namespace, settings.cache_storage_options)
            if found is not None:
                _SNAPSHOTS[app] = (settings, str(app.config.project), found)
        return
    if (Path(app.doctreedir) / _ENV_PICKLE).exists():
        return
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


def snapshot_of(app: Sphinx, settings: EvalDemoConfig) -> snapshot.Snapshot | None:
    """The snapshot started for ``app``, if its settings and project are still the same."""
    started = _SNAPSHOTS.pop(app, None)
    if started is None:
        return None
    early, project, found = started
    if (early, project) != (settings, str(app.config.project)):
        found.close()
        return None
    return found

"""Content-addressed store for example results: one file per result, in a project's namespace.

The store is a local folder or an fsspec URL (``s3://bucket/prefix``) that machines and
builds share. Layout: ``<root>/<namespace>/<key[:2]>/<key>.json`` plus the namespace's
``durations.json`` (how long each example took last time, for scheduling). Writes are
atomic (a renamed temporary file; one PUT on an object store), and a result's name is
the hash of what produced it, so concurrent builds cannot corrupt one another. A full
build prunes only its own namespace. Anything unreadable or foreign is a miss.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from .model import ExampleResult
from .stores import LocalStore, Store, StoreError, open_store

if TYPE_CHECKING:
    from ..config import EvalDemoConfig

__all__ = ["Cache", "StoreError", "default_namespace", "fingerprint"]

DURATIONS = "durations.json"
_KEY = re.compile(r"[0-9a-f]{64}")


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


@functools.cache
def fingerprint() -> str:
    """What besides the request decides a result: the versions that run it."""
    return " ".join(
        [
            f"python={sys.version.split()[0]}",
            f"torch={_version('torch')}",
            f"numpy={_version('numpy')}",
            f"sphinx-evaldemo={__version__}",
        ]
    )


def default_namespace(project: str) -> str:
    """A folder name made from the project's name (``My Docs`` -> ``My-Docs``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", project).strip("-.") or "default"


class Cache:
    """Results by key in one namespace of a store; a store that fails turns the cache off.

    Look-ups on a remote store are batched: the namespace is listed once (one request
    per thousand results), and :meth:`prefetch` reads many results concurrently.
    """

    def __init__(self, store: Store | str | os.PathLike[str], namespace: str = "default",
                 options: dict[str, object] | None = None) -> None:
        self.namespace = namespace
        self._loaded: dict[str, ExampleResult] = {}
        self._listed: set[str] | None = None
        #: why the cache is (partly) off: an unusable folder, a store that refused a write
        self.problem: str | None = None
        self._reads = True  # False: the store cannot be used at all
        try:
            self.store = (
                open_store(os.fspath(store), options) if isinstance(store, str | os.PathLike)
                else store
            )
        except StoreError as error:  # no fsspec, options the filesystem refuses
            self.store = LocalStore(Path(os.devnull))
            self.location = f"{store}/{namespace}"
            self._off(str(error))
            self._reads = False
        else:
            self.location = f"{self.store.describe()}/{namespace}"

    def check(self) -> str | None:
        """Make sure results can be stored; otherwise turn the cache off and say why."""
        try:
            if self.local:
                self.store.probe(self.namespace)
            else:  # listing the namespace is the probe, and serves every look-up after it
                self._listed = _keys_of(self.store.names(self.namespace))
        except StoreError as error:
            self._off(str(error))
            self._reads = False
        return self.problem

    def _off(self, why: str) -> None:
        if self.problem is None:
            self.problem = (
                f"the result cache at {self.location} cannot be used ({why}); this build "
                "stores no results: set evaldemo_cache_dir to a folder or URL it can write"
            )

    def _path(self, key: str) -> str:
        return f"{self.namespace}/{key[:2]}/{key}.json"

    @property
    def local(self) -> bool:
        return isinstance(self.store, LocalStore)

    # -- reading --------------------------------------------------------------------

    def _keys(self) -> set[str]:
        """Every key stored in the namespace (listed once per build on a remote store)."""
        if self._listed is None:
            try:
                self._listed = _keys_of(self.store.names(self.namespace))
            except StoreError:
                self._listed = set()
        return self._listed

    def has(self, key: str) -> bool:
        """Cheap: whether a result is stored (it may still turn out unreadable in :meth:`get`)."""
        if key in self._loaded:
            return True
        if not self._reads:
            return False
        if self.local:
            return self.store.exists(self._path(key))
        return key in self._keys()

    def empty(self) -> bool:
        if not self._reads:
            return True
        if self.local:
            return not self.store.names(self.namespace, limit=1)
        return not self._keys()

    def get(self, key: str) -> ExampleResult | None:
        if key in self._loaded:
            return self._loaded[key]
        if not self._reads:
            return None
        if not self.local and key not in self._keys():
            return None
        self.prefetch([key])
        return self._loaded.get(key)

    def prefetch(self, keys: Iterable[str]) -> None:
        """Read the stored results of ``keys`` at once (concurrently on a remote store)."""
        if not self._reads:
            return
        wanted = [k for k in dict.fromkeys(keys) if k not in self._loaded]
        if not self.local:
            wanted = [k for k in wanted if k in self._keys()]
        if not wanted:
            return
        found = self.store.read_many([self._path(k) for k in wanted])
        for key in wanted:
            data = found.get(self._path(key))
            if data is None:
                continue
            try:
                self._loaded[key] = ExampleResult.from_json(data.decode("utf-8"))
            except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
                continue

    # -- writing --------------------------------------------------------------------

    def put(self, key: str, result: ExampleResult) -> None:
        """Store a result; a store that refuses turns the cache off (one warning says so)."""
        self._loaded[key] = result
        if self.problem is not None:
            return
        try:
            self.store.write(self._path(key), result.to_json().encode("utf-8"))
        except StoreError as error:
            self._off(str(error))
            return
        if self._listed is not None:
            self._listed.add(key)

    def prune(self, keep: set[str]) -> int:
        """Remove every result of this namespace whose key is not in ``keep``; return how many."""
        if self.problem is not None:
            return 0
        self._listed = None
        try:
            names = self.store.names(self.namespace, stale_temporaries=True)
            stale = [
                name for name in names
                if name.rsplit("/", 1)[-1].split(".", 1)[0] not in keep
                and not name.endswith(DURATIONS)
            ]
            self.store.delete(stale)
        except StoreError:
            return 0
        for key in set(self._loaded) - keep:
            del self._loaded[key]
        return len(stale)

    # -- durations, for longest-first scheduling -------------------------------------

    def durations(self) -> dict[str, float]:
        """Seconds each example (``docname:line``) took when it last ran."""
        if not self._reads:
            return {}
        data = self.store.read_many([f"{self.namespace}/{DURATIONS}"])
        try:
            found = json.loads(next(iter(data.values()), b"{}"))
        except ValueError:
            return {}
        if not isinstance(found, dict):
            return {}
        return {k: float(v) for k, v in found.items() if isinstance(v, int | float)}

    def record_durations(self, seconds: dict[str, float]) -> None:
        """Merge this build's run times into the namespace's record (a hint: last one wins)."""
        if self.problem is not None or not seconds:
            return
        merged = {**self.durations(), **{k: round(v, 3) for k, v in seconds.items()}}
        try:
            self.store.write(f"{self.namespace}/{DURATIONS}",
                             json.dumps(merged, sort_keys=True).encode("utf-8"))
        except StoreError:
            return


def _keys_of(names: Iterable[str]) -> set[str]:
    """The keys among a namespace's file names (``ab/<key>.json``)."""
    stems = (name.rsplit("/", 1)[-1].removesuffix(".json") for name in names if name.endswith(".json"))
    return {stem for stem in stems if _KEY.fullmatch(stem)}


def open_cache(settings: EvalDemoConfig, confdir: str | os.PathLike[str],
               doctreedir: str | os.PathLike[str], project: str) -> Cache:
    """The cache the settings name; by default ``.evaldemo-cache`` beside the doctree folder.

    With ``make`` that is ``_build/.evaldemo-cache``, which ``make clean`` (``rm -rf
    _build/*``: the shell's ``*`` skips dot-files) leaves in place, as MyST-NB's
    ``.jupyter_cache`` is left.
    """
    location = os.fspath(settings.cache_dir) if settings.cache_dir else ""
    if not location:
        location = str(Path(doctreedir).parent / ".evaldemo-cache")
    elif "://" not in location:
        location = str(Path(confdir, location))
    namespace = settings.cache_namespace or default_namespace(project)
    return Cache(location, namespace, settings.cache_storage_options)

"""Content-addressed store for example results: one file per result, in a project's namespace.

The store is a local folder or an fsspec URL (``s3://bucket/prefix``) that machines and
builds share, behind one interface (:class:`.stores.Store`; reading a remote one ahead
is :mod:`.snapshot`'s, behind the same interface). The layout is this module's:
``<root>/<namespace>/<key[:2]>/<key>.json``, plus the namespace's ``durations.json``
(how long each example took last time, for scheduling) and, on a store that reads
ahead, its ``bundle.json``. Writes are
atomic (a renamed temporary file; one PUT on an object store), and a result's name is
the hash of what produced it, so concurrent builds cannot corrupt one another. A full
build prunes only its own namespace. Anything unreadable or foreign is a miss.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from .model import ExampleResult, dumps, loads
from .stores import LocalStore, Store, StoreError, open_store

if TYPE_CHECKING:
    from ..config import EvalDemoConfig

__all__ = ["BUNDLE", "DURATIONS", "Cache", "StoreError", "default_namespace", "fingerprint",
           "key_of", "result_path"]

#: A result's key: the hash of what produced it.
KEY = re.compile(r"[0-9a-f]{64}")
#: How long each example took last time (for scheduling): a hint.
DURATIONS = "durations.json"
#: The results the last full build used, in one object, written and read by a store that
#: reads ahead (:mod:`.snapshot`): a hint, like the durations; the result objects stay
#: the truth.
BUNDLE = "bundle.json"


def result_path(namespace: str, key: str) -> str:
    """Where a result lives in its namespace (a folder per two hex digits)."""
    return f"{namespace}/{key[:2]}/{key}.json"


def key_of(name: str) -> str | None:
    """The key a stored name holds the result of, or ``None`` (durations, bundle...)."""
    stem = name.rsplit("/", 1)[-1].removesuffix(".json")
    return stem if name.endswith(".json") and KEY.fullmatch(stem) else None


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


@functools.cache
def fingerprint() -> str:
    """What besides the request decides a result: the versions that run it, and the
    source of this package's own code that runs in an example's process (detection,
    comparison, tracing, the worker), so that a change there runs again what it affects."""
    return " ".join(
        [
            f"python={sys.version.split()[0]}",
            f"torch={_version('torch')}",
            f"numpy={_version('numpy')}",
            f"code={code_digest(PACKAGE)}",
        ]
    )


#: The package's folder, and the module every example's process starts from (the warm
#: parent and a freshly started child alike), relative to it.
PACKAGE = Path(__file__).resolve().parent.parent
WORKER = "examples/worker/__main__.py"

#: ``from .x import a, b`` (relative) and ``from sphinx_evaldemo.x import a`` or ``import
#: sphinx_evaldemo.x`` (absolute), at any indentation (imports inside functions count).
_RELATIVE = re.compile(r"^[ \t]*from[ \t]+(\.+)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)", re.M)
_ABSOLUTE = re.compile(
    r"^[ \t]*(?:from[ \t]+sphinx_evaldemo((?:\.\w+)*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)"
    r"|import[ \t]+sphinx_evaldemo((?:\.\w+)*))", re.M)


def code_digest(package: Path, entry: str = WORKER) -> str:
    """A hash of the source of every module of ``package`` that an example's process
    imports: ``entry`` and what it imports of the package, followed to the end (packages'
    ``__init__`` included). What only the build runs (rendering, the directive, the
    cache) is not in it: a change there does not change what an example computes."""
    digest = hashlib.sha256()
    for path in child_modules(package, entry):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def child_modules(package: Path, entry: str = WORKER) -> list[Path]:
    """The source files of ``package`` an example's process imports, in a stable order.

    Read from the import statements of the sources (not by importing them, which
    would import torch into the build): an import in a string or a branch never taken
    counts too, which can only make the key change more often, never less."""
    seen: set[Path] = set()
    todo = [(package / entry, True)]
    while todo:
        path, imported = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        parts = list(path.relative_to(package).with_suffix("").parts)
        here = parts[:-1]  # the package this module is in (``__init__``: itself)
        for folder in range(len(here) + 1):  # a module's packages run before it
            todo.append((package.joinpath(*here[:folder], "__init__.py"), False))
        text = path.read_text(encoding="utf-8")
        if not imported:  # a package run only as the parent of a module: what it runs
            # itself when imported, not what its functions (a Sphinx ``setup``) import
            text = "\n".join(line for line in text.splitlines() if not line[:1].isspace())
        for dots, module, names in _RELATIVE.findall(text):
            base = here[: len(here) - (len(dots) - 1)] if len(dots) - 1 <= len(here) else None
            if base is not None:
                todo.extend((found, True) for found in _modules(package, [*base, *filter(None, module.split("."))], names))
        for module, names, imported in _ABSOLUTE.findall(text):
            todo.extend((found, True) for found in _modules(package, list(filter(None, (module or imported).split("."))), names))
    return sorted(seen)


def _modules(package: Path, parts: list[str], names: str) -> list[Path]:
    """The files ``from <parts> import <names>`` may load: the module, and each name that
    is a submodule of it."""
    found = [package.joinpath(*parts).with_suffix(".py"), package.joinpath(*parts, "__init__.py")]
    for name in re.findall(r"\w+", names):  # ``x as y`` looks for ``as`` and ``y`` too: harmless
        found += [package.joinpath(*parts, name).with_suffix(".py"), package.joinpath(*parts, name, "__init__.py")]
    return found


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
        """Make sure results can be stored; otherwise turn the cache off and say why.

        On a remote store the listing is the probe, and serves every look-up after it;
        while a store reads ahead, it is left to the first look-up (:meth:`_keys`).
        """
        if self.local:
            try:
                self.store.probe(self.namespace)
            except StoreError as error:
                self._off(str(error))
                self._reads = False
        elif self._reads and self.store.ready():
            self._keys()
        return self.problem

    def close(self) -> None:
        """End what the store started for this build (a helper reading ahead)."""
        self.store.close()

    def listed(self) -> bool:
        """Whether :meth:`has` and :meth:`empty` answer now, without waiting for a store
        that reads ahead."""
        return self.local or self._listed is not None or self.store.ready()

    def _off(self, why: str) -> None:
        if self.problem is None:
            self.problem = (
                f"the result cache at {self.location} cannot be used ({why}); this build "
                "stores no results: set evaldemo_cache_dir to a folder or URL it can write"
            )

    def _path(self, key: str) -> str:
        return result_path(self.namespace, key)

    @property
    def local(self) -> bool:
        return isinstance(self.store, LocalStore)

    # -- reading --------------------------------------------------------------------

    def _keys(self) -> set[str]:
        """Every key stored in the namespace (listed once per build on a remote store).

        A store that cannot be listed turns the cache off (the warning says why).
        """
        if self._listed is None:
            try:
                self._listed = _keys_of(self.store.names(self.namespace))
            except StoreError as error:
                self._listed = set()
                self._off(str(error))
                self._reads = False
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
                self._loaded[key] = loads(ExampleResult, data)
            except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
                continue

    # -- writing --------------------------------------------------------------------

    def put(self, key: str, result: ExampleResult) -> None:
        """Store a result; a store that refuses turns the cache off (one warning says so)."""
        self._loaded[key] = result
        if self.problem is not None:
            return
        try:
            self.store.write(self._path(key), dumps(result).encode("utf-8"))
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
        try:  # a store that read ahead lists what it read: never what came after
            names = self.store.names(self.namespace, stale_temporaries=True)
            stale = [  # results no page uses, and temporary files a build left
                name for name in names
                if "/.tmp-" in name or ((key := key_of(name)) is not None and key not in keep)
            ]
            self.store.delete(stale)
        except StoreError:
            return 0
        for key in set(self._loaded) - keep:
            del self._loaded[key]
        return len(stale)

    def bundle(self, keys: set[str]) -> None:
        """After a full build: the results of ``keys`` that it holds, for a store that reads
        ahead to keep together (see :meth:`.stores.Store.keep_together`)."""
        if self.local or self.problem is not None or not self._reads:
            return
        try:
            self.store.keep_together(
                self.namespace, [self._path(key) for key in sorted(keys) if key in self._loaded])
        except StoreError as error:
            self._off(str(error))

    # -- durations, for longest-first scheduling -------------------------------------

    def durations(self) -> dict[str, float]:
        """Seconds each example (``docname:line``) took when it last ran."""
        if not self._reads:
            return {}
        if not self.local:
            self._keys()  # a store that cannot be listed: no durations either
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
    return {key for key in map(key_of, names) if key is not None}


#: The default cache's folder, beside ``conf.py``.
DEFAULT_FOLDER = ".evaldemo-cache"


def open_cache(settings: EvalDemoConfig, confdir: str | os.PathLike[str],
               doctreedir: str | os.PathLike[str], project: str,
               store: Store | None = None) -> Cache:
    """The cache the settings name; by default ``.evaldemo-cache`` beside ``conf.py``.
    ``store``: the store of that place, made earlier (one reading ahead, :mod:`.snapshot`).

    The default is kept out of every output folder, so that nothing that cleans one
    (``make clean``, ``sphinx-build -M clean``, ``rm -rf _build``) takes the results with
    it, ``make html`` and a direct ``sphinx-build`` share it, and it is never published;
    it holds a ``.gitignore`` of its own, as pytest's ``.pytest_cache`` does. A project's
    results in the old default place (beside the doctree folder) are moved here once.
    """
    location = os.fspath(settings.cache_dir) if settings.cache_dir else ""
    namespace = settings.cache_namespace or default_namespace(project)
    if store is None and not location:
        root = Path(confdir) / DEFAULT_FOLDER
        adopt(Path(doctreedir).parent / DEFAULT_FOLDER, root, namespace)
        store = LocalStore(root, ignored=True)
    elif "://" not in location:
        location = str(Path(confdir, location))
    return Cache(store if store is not None else location, namespace, settings.cache_storage_options)


def adopt(old: Path, new: Path, namespace: str) -> None:
    """Move ``namespace`` from the cache folder ``old`` into ``new``, if only ``old`` has it
    (what the default place was before it moved beside ``conf.py``). Anything in the way
    leaves both as they are: the examples then run again, as with an empty cache."""
    source, target = old / namespace, new / namespace
    with contextlib.suppress(OSError):
        if source.is_dir() and not target.exists() and old.resolve() != new.resolve():
            new.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)
            with contextlib.suppress(OSError):
                old.rmdir()  # only if no other project's namespace is left in it

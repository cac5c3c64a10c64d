"""Reading a remote result cache ahead: a store that serves what a helper process read.

Optional, and behind the store interface (:class:`.stores.Store`): the cache sees a
store like any other. Reading a cache on object storage costs the import of its
filesystem (for S3, s3fs and botocore), a listing of the namespace and one batch of
reads: as long as a warm local build of a small project takes. Started early in the
build, a helper process does all of it on another core while Sphinx reads the pages;
the :class:`Snapshot` store answers the cache's listing and reads from what the helper
found once the build first needs them, and passes everything else (every write, and
every read when the helper failed) to the store behind it. After a full build it keeps
the results the build used together in the namespace's bundle (:data:`.cache.BUNDLE`),
which the next build's helper reads in one request.

The helper is a fork of the build where that is safe (no other thread), or else a
fresh process that gets its request on stdin (the storage options may hold credentials,
which a command line would show to every user of the machine); it writes what it found
to a file the build named, and exits; the kernel kills it if the build dies first (Linux).
A store it cannot read (no such bucket, no access, no connection) turns the cache off
with the usual warning, without the build trying again; anything else that goes wrong
in it (a crash, no answer within :data:`WAIT` seconds) leaves the build to read the
store itself, as it would without a helper.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .cache import BUNDLE, DURATIONS, KEY, key_of
from .stores import FsspecStore, PlainStore, Store, StoreError

#: Seconds the build waits for the helper before it reads the store itself.
WAIT = 120.0


@dataclass(frozen=True)
class Found:
    """What the helper read: every name of the namespace (as the store lists them) and
    the contents of its results (``.json`` names); or why the store cannot be read."""

    names: list[str]
    data: dict[str, bytes]
    error: str | None = None
    #: the keys the bundle held (``None``: no bundle was read)
    bundled: frozenset[str] | None = None


class Source(Protocol):
    """What read the namespace ahead: a :class:`Helper` process, or :class:`InProcess`."""

    def ready(self) -> bool: ...
    def take(self) -> Found | None: ...
    def close(self) -> None: ...


class Snapshot(PlainStore):
    """The store ``inner``, with ``namespace`` read ahead by ``helper``.

    The namespace's listing is the helper's (with this build's own writes and deletes):
    a name it did not list is absent, and is not looked for again.
    """

    def __init__(self, inner: Store, namespace: str, helper: Source | None) -> None:
        self.inner, self.namespace, self._helper = inner, namespace, helper
        self._found: Found | None = None
        self._names: dict[str, None] = {}  # ordered, as listed
        self._data: dict[str, bytes] = {}
        #: the keys of the bundle in the store (``None``: not known)
        self._bundled: frozenset[str] | None = None
        #: what this build wrote (bytes) or deleted (``None``) before the helper answered:
        #: a write never waits for it
        self._early: dict[str, bytes | None] = {}

    def _take(self) -> Found | None:
        """What the helper read (waiting for it the first time); ``None``: it failed."""
        if self._helper is not None:
            found, self._helper = self._helper.take(), None
            if found is not None:
                self._found = found
                self._names = dict.fromkeys(found.names)
                self._data = dict(found.data)
                self._bundled = found.bundled
                for path, data in self._early.items():
                    self._note(path, data)
            self._early = {}
        return self._found

    def _serves(self, path: str) -> bool:
        return path.startswith(f"{self.namespace}/") and self._take() is not None

    def ready(self) -> bool:
        return self._helper is None or self._helper.ready()

    def close(self) -> None:
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    def describe(self) -> str:
        return self.inner.describe()

    def probe(self, namespace: str) -> None:
        self.inner.probe(namespace)

    def exists(self, path: str) -> bool:
        return path in self._names if self._serves(path) else self.inner.exists(path)

    def names(self, folder: str, limit: int | None = None, stale_temporaries: bool = False) -> list[str]:
        found = self._take() if folder == self.namespace else None
        if found is None:
            return self.inner.names(folder, limit, stale_temporaries)
        if found.error is not None:
            raise StoreError(found.error)
        names = [name for name in self._names if stale_temporaries or "/.tmp-" not in name]
        return names[:limit] if limit is not None else names

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        served = [path for path in paths if self._serves(path)]
        found = {path: self._data[path] for path in served if path in self._data}
        elsewhere = [path for path in paths if path not in found and (
            path in self._names or not self._serves(path))]
        if elsewhere:
            read = self.inner.read_many(elsewhere)
            self._data.update((path, data) for path, data in read.items() if self._serves(path))
            found.update(read)
        return found

    def write(self, path: str, data: bytes) -> None:
        self.inner.write(path, data)
        self._note(path, data)

    def delete(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        self.inner.delete(paths)
        for path in paths:
            self._note(path, None)

    def _note(self, path: str, data: bytes | None) -> None:
        """Keep the listing and the contents in step with this build's own write (or
        delete: ``None``), without waiting for a helper that has not answered yet."""
        if not path.startswith(f"{self.namespace}/"):
            return
        if self._helper is not None:
            self._early[path] = data
        elif data is None:
            self._names.pop(path, None)
            self._data.pop(path, None)
        elif self._found is not None:
            self._names[path] = None
            self._data[path] = data

    def keep_together(self, folder: str, paths: list[str]) -> None:
        """The results of ``paths`` in one object (written only when its keys changed)."""
        if folder != self.namespace or self._take() is None:
            return
        held = self.read_many(paths)
        results = {key: held[path].decode("utf-8") for path in paths
                   if path in held and (key := key_of(path)) is not None}
        if self._bundled is not None and self._bundled == results.keys():
            return
        self.inner.write(f"{folder}/{BUNDLE}", json.dumps({"results": results}).encode("utf-8"))
        self._bundled = frozenset(results)


class Helper:
    """The helper process reading ``namespace`` of the store at ``location``."""

    def __init__(self, location: str, namespace: str, options: dict[str, Any] | None) -> None:
        request = {"location": location, "namespace": namespace, "options": options or {}}
        text = json.dumps(request)  # what cannot travel as JSON is refused here, in both ways
        handle, self._out = tempfile.mkstemp(prefix="evaldemo-snapshot-", suffix=".json")
        os.close(handle)
        self._process: subprocess.Popen[bytes] | _Forked
        if _may_fork():
            self._process = _Forked(request, self._out)
        else:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, self._out],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            try:
                assert self._process.stdin is not None
                self._process.stdin.write(text.encode("utf-8"))
                self._process.stdin.close()
            except OSError:  # it died at once: take() finds no answer
                pass
        self._finalizer = weakref.finalize(self, _end, self._process, self._out)
        self._taken = False

    def ready(self) -> bool:
        """Whether :meth:`take` would answer without waiting."""
        return self._taken or self._process.poll() is not None

    def take(self) -> Found | None:
        """What the helper read, once (``None``: it failed, read the store yourself)."""
        if self._taken:
            return None
        self._taken = True
        try:
            self._process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.close()
            return None
        try:
            return found_in(json.loads(Path(self._out).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        finally:
            self.close()

    def close(self) -> None:
        """End the helper if it still runs; remove its answer."""
        self._taken = True
        self._finalizer()


class InProcess:
    """The namespace read in the build's own process when the cache first needs it: where
    a helper cannot be started (storage options that JSON cannot carry, no process left)."""

    def __init__(self, store: Store, namespace: str) -> None:
        self._store, self._namespace = store, namespace

    def ready(self) -> bool:
        return True  # nothing to wait for: the read is the caller's own

    def take(self) -> Found | None:
        try:
            return found_in(read_namespace(self._store, self._namespace))
        except StoreError as error:
            return Found([], {}, str(error))

    def close(self) -> None:
        return None


def found_in(answer: dict[str, Any]) -> Found:
    """The :class:`Found` of what :func:`read_namespace` answered (or ``{"error": ...}``)."""
    if "error" in answer:
        return Found([], {}, str(answer["error"]))
    names, data, bundled = answer["names"], answer["data"], answer["bundled"]
    return Found(
        list(names), {name: text.encode("utf-8") for name, text in data.items()},
        bundled=None if bundled is None else frozenset(bundled),
    )


def _end(process: subprocess.Popen[bytes] | _Forked, out: str) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    for path in (Path(out), Path(f"{out}.tmp")):
        path.unlink(missing_ok=True)


def _may_fork() -> bool:
    """Whether the helper can be a fork of this process: Linux, and no other thread
    (a fork keeps only the thread that made it; one holding a lock would hold it for
    ever). ``sphinx-build`` has none when it loads extensions; a process that runs
    several builds (a test suite, a Dask client) gets a freshly started helper."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


class _Forked:
    """The helper as a fork of the build: no interpreter to start, and the modules it
    shares with Sphinx are imported already. What ``subprocess.Popen`` offers of it."""

    def __init__(self, request: dict[str, Any], out: str) -> None:
        import multiprocessing

        self._process = multiprocessing.get_context("fork").Process(
            target=_serve, args=(request, out), name="evaldemo-snapshot", daemon=True)
        self._process.start()
        assert self._process.pid is not None  # started
        self.pid: int = self._process.pid

    def poll(self) -> int | None:
        return None if self._process.is_alive() else self._process.exitcode

    def wait(self, timeout: float | None = None) -> int | None:
        self._process.join(timeout)
        if self._process.is_alive():
            raise subprocess.TimeoutExpired("evaldemo snapshot helper", timeout or 0.0)
        return self._process.exitcode

    def kill(self) -> None:
        self._process.kill()


def start(location: str, namespace: str, options: dict[str, Any] | None) -> Snapshot | None:
    """The store at ``location`` with a helper reading ``namespace`` now, or ``None`` where
    one cannot be started (the cache then opens the store itself)."""
    try:
        inner = FsspecStore(location, options)
    except StoreError:  # no fsspec, or no filesystem for the URL: the cache says so
        return None
    try:
        source: Source = Helper(location, namespace, options)
    except (OSError, TypeError, ValueError):  # options JSON cannot carry, no process left
        source = InProcess(inner, namespace)
    return Snapshot(inner, namespace, source)


def read_namespace(store: Store, namespace: str) -> dict[str, Any]:
    """Every name of the namespace and the text of each result and hint in it: the hints
    (durations, bundle) read while the namespace is listed, then the results the bundle
    lacks, all at once. A name the listing lacks is absent, even if it could be read."""
    known = [f"{namespace}/{name}" for name in (DURATIONS, BUNDLE)]
    with ThreadPoolExecutor(1) as pool:
        early = pool.submit(store.read_many, known)
        names = store.names(namespace, stale_temporaries=True)
        listed = set(names)
        found = {name: content for name, content in early.result().items() if name in listed}
    found.update(store.read_many([
        name for name in names if name.endswith(".json") and key_of(name) is None and name not in found]))
    data = _texts(found)
    bundled = _bundle(data.pop(f"{namespace}/{BUNDLE}", None))
    for name in names:
        key = key_of(name)
        if key is not None and bundled is not None and key in bundled:
            data[name] = bundled[key]
    rest = [name for name in names if key_of(name) is not None and name not in data]
    data.update(_texts(store.read_many(rest)))
    return {"names": names, "data": data, "bundled": None if bundled is None else sorted(bundled)}


def _texts(found: dict[str, bytes]) -> dict[str, str]:
    texts = {}
    for name, content in found.items():
        with contextlib.suppress(UnicodeDecodeError):  # not a result: a miss anyway
            texts[name] = content.decode("utf-8")
    return texts


def _bundle(text: str | None) -> dict[str, str] | None:
    """A bundle's results by key (``None``: none, or not a bundle)."""
    if text is None:
        return None
    try:
        results = json.loads(text)["results"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(results, dict):
        return None
    return {k: v for k, v in results.items() if isinstance(v, str) and KEY.fullmatch(k)}


def main(out: str) -> None:
    """The freshly started helper: the request comes on stdin."""
    _serve(json.loads(sys.stdin.read()), out)


def _serve(request: dict[str, Any], out: str) -> None:
    """The helper: list the namespace, read its results, write them to ``out``, exit."""
    from .prctl import die_with_parent

    try:
        die_with_parent()
        answer = _read(request["location"], request["namespace"], request["options"])
        temporary = Path(f"{out}.tmp")
        with temporary.open("w", encoding="utf-8") as stream:
            json.dump(answer, stream)
        temporary.replace(out)
    finally:
        os._exit(0)  # no teardown of the filesystem's sessions (the build is waiting); in a
        # fork, nothing of the build's (its buffered output, its exit hooks) runs twice


def _read(location: str, namespace: str, options: dict[str, Any]) -> dict[str, Any]:
    """The namespace as the store reads it, or why it cannot be read."""
    try:
        return read_namespace(FsspecStore(location, options), namespace)
    except StoreError as error:  # the cache is off for this build, and the warning says why
        return {"error": str(error)}

if __name__ == "__main__":
    main(sys.argv[1])

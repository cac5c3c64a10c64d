"""A remote result cache, read by a helper process while Sphinx starts up.

Reading a cache on object storage costs the import of its filesystem (for S3, s3fs and
botocore: about 0.4 s of CPU; botocore alone, which the helper uses where it can, see
:mod:`.s3reader`: 0.13 s), a listing of the namespace and one batch of reads: as
long as a warm local build of a small project takes. Started from the extension's
``setup``, a helper process does all of it on another core while Sphinx loads its
extensions, reads the pages and resolves them; the build takes the names and the
stored results when it first needs them, and imports the filesystem itself only to
write (a result that ran, the durations, a prune that removes something).

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
import re
import subprocess
import sys
import tempfile
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

#: Seconds the build waits for the helper before it reads the store itself.
WAIT = 120.0
#: A result's key: the hash of what produced it.
KEY = re.compile(r"[0-9a-f]{64}")
#: How long each example took last time (for scheduling): a hint, read by the helper too.
DURATIONS = "durations.json"
#: The namespace's bundle: the results the last full build used, in one object, so that
#: the helper makes one read instead of one per result. A hint, like the durations: the
#: result objects stay the truth, and a result the bundle lacks is read on its own.
BUNDLE = "bundle.json"


def result_path(namespace: str, key: str) -> str:
    """Where a result lives in its namespace (a folder per two hex digits)."""
    return f"{namespace}/{key[:2]}/{key}.json"


def key_of(name: str) -> str | None:
    """The key a stored name holds the result of, or ``None`` (durations, bundle...)."""
    stem = name.rsplit("/", 1)[-1].removesuffix(".json")
    return stem if name.endswith(".json") and KEY.fullmatch(stem) else None


class Readable(Protocol):
    """What the helper needs of a store: :class:`.stores.FsspecStore`, or an
    :class:`.s3reader.S3Reader`."""

    def names(self, folder: str, limit: int | None = None,
              stale_temporaries: bool = False) -> list[str]: ...
    def read_many(self, paths: list[str]) -> dict[str, bytes]: ...


@dataclass(frozen=True)
class Found:
    """What the helper read: every name of the namespace (as the store lists them) and
    the contents of its results (``.json`` names); or why the store cannot be read."""

    names: list[str]
    data: dict[str, bytes]
    error: str | None = None
    #: the keys the bundle held (``None``: no bundle was read)
    bundled: frozenset[str] | None = None
    #: what read the store: ``botocore`` (:mod:`.s3reader`) or ``fsspec``
    reader: str = "fsspec"


class Snapshot:
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

    @property
    def pid(self) -> int:
        """The helper's process id (for tests and diagnostics)."""
        return self._process.pid

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
            answer = json.loads(Path(self._out).read_text(encoding="utf-8"))
            if "error" in answer:
                return Found([], {}, str(answer["error"]))
            names, data, bundled = answer["names"], answer["data"], answer["bundled"]
            return Found(
                list(names), {name: text.encode("utf-8") for name, text in data.items()},
                bundled=None if bundled is None else frozenset(bundled), reader=str(answer["reader"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        finally:
            self.close()

    def close(self) -> None:
        """End the helper if it still runs; remove its answer."""
        self._taken = True
        self._finalizer()


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
    """The helper as a fork of the build, made when the extension is set up: no
    interpreter to start, and the modules it shares with Sphinx are imported already
    (about 0.05 s sooner than a fresh process). What ``subprocess.Popen`` offers of it."""

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
    """A helper reading the namespace now, or ``None`` where one cannot be started."""
    try:
        return Snapshot(location, namespace, options)
    except (OSError, TypeError, ValueError):  # options JSON cannot carry, no process left
        return None


def read_namespace(store: Readable, namespace: str) -> dict[str, Any]:
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
    """The namespace read by botocore where it can, else (or after any error) by fsspec."""
    from .s3reader import s3_reader, unreachable
    from .stores import FsspecStore, StoreError

    try:
        fast = s3_reader(location, options)
        if fast is not None:
            return {**read_namespace(fast, namespace), "reader": "botocore"}
    except Exception as error:  # noqa: BLE001  # s3fs reads it, and says what is wrong
        if unreachable(error):  # s3fs would wait as long again for the same answer
            return {"error": f"{type(error).__name__}: {error}"}
    try:
        return {**read_namespace(FsspecStore(location, options), namespace), "reader": "fsspec"}
    except StoreError as error:  # the cache is off for this build, and the warning says why
        return {"error": str(error)}


if __name__ == "__main__":
    main(sys.argv[1])

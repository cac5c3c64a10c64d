"""Where cached results live: a local folder, or any fsspec filesystem (S3, GCS, ...).

Both stores speak in paths relative to their root, write atomically and turn every
failure of the underlying filesystem into :class:`StoreError`. fsspec is imported only
when a URL asks for it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

#: Temporary files older than this (seconds) belong to an interrupted build.
STALE_AFTER = 600
#: Filesystems whose single write is atomic (an object appears whole or not at all).
_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"}


class StoreError(Exception):
    """The store cannot be read or written; the message says why, for a warning."""


class Store(Protocol):
    """What the cache asks of where results live. Paths are relative to the store's root."""

    def describe(self) -> str: ...
    def probe(self, namespace: str) -> None: ...
    def exists(self, path: str) -> bool: ...
    def names(self, folder: str, limit: int | None = None,
             stale_temporaries: bool = False) -> list[str]: ...
    def read_many(self, paths: list[str]) -> dict[str, bytes]: ...
    def write(self, path: str, data: bytes) -> None: ...
    def delete(self, paths: Iterable[str]) -> None: ...

    def ready(self) -> bool:
        """Whether :meth:`names` answers without waiting (a store reading ahead may not yet)."""
        ...

    def keep_together(self, folder: str, paths: list[str]) -> None:
        """After a full build: the results it used, which a store that reads ahead may keep
        together for the next build to read at once (a hint; the others do nothing)."""
        ...

    def close(self) -> None:
        """End what the store started for this build (a helper reading ahead)."""
        ...


class PlainStore:
    """The optional parts of :class:`Store` for a store that does not read ahead."""

    def ready(self) -> bool:
        return True

    def keep_together(self, folder: str, paths: list[str]) -> None:
        return None

    def close(self) -> None:
        return None


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return f"{type(error).__name__}: {error}"


class LocalStore(PlainStore):
    """A folder on this machine; a write is a temporary file renamed into place.

    ``ignored``: the folder holds a ``.gitignore`` that ignores all of it (the default
    cache, which lies in the project's sources).
    """

    def __init__(self, root: Path, ignored: bool = False) -> None:
        self.root = root
        self.ignored = ignored

    def describe(self) -> str:
        return str(self.root)

    def probe(self, namespace: str) -> None:
        folder = self.root / namespace
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if self.ignored and not (self.root / ".gitignore").exists():
                self.write(".gitignore", b"*\n")
            handle, name = tempfile.mkstemp(prefix=".tmp-probe-", dir=folder)
            os.close(handle)
            Path(name).unlink()
        except OSError as error:
            raise StoreError(_reason(error)) from None

    def exists(self, path: str) -> bool:
        return (self.root / path).is_file()

    def names(self, folder: str, limit: int | None = None,
             stale_temporaries: bool = False) -> list[str]:
        base = self.root / folder
        found: list[str] = []
        patterns = ["??/*.json", *(["??/.tmp-*"] if stale_temporaries else [])]
        stale = time.time() - STALE_AFTER
        for pattern in patterns:
            for path in base.glob(pattern):
                if path.name.startswith(".tmp-") and _mtime(path) >= stale:
                    continue  # another build may be writing it right now
                found.append(path.relative_to(self.root).as_posix())
                if limit is not None and len(found) >= limit:
                    return found
        return found

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        found = {}
        for path in paths:
            with contextlib.suppress(OSError):
                found[path] = (self.root / path).read_bytes()
        return found

    def write(self, path: str, data: bytes) -> None:
        target = self.root / path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        except OSError as error:
            raise StoreError(_reason(error)) from None
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            Path(temporary).replace(target)
        except OSError as error:
            Path(temporary).unlink(missing_ok=True)
            raise StoreError(_reason(error)) from None
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def delete(self, paths: Iterable[str]) -> None:
        for path in paths:
            with contextlib.suppress(OSError):
                (self.root / path).unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")


class FsspecStore(PlainStore):
    """Any fsspec filesystem; reads of many results go out concurrently (``fs.cat``).

    The filesystem (for S3: s3fs and botocore) is made on first use, so a build whose
    reads were made ahead (:mod:`.snapshot`) imports it only to write.
    """

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        try:
            import fsspec  # an optional extra, imported only for a URL
            from fsspec.core import split_protocol
        except ImportError:
            raise StoreError(
                "fsspec is not installed: pip install 'sphinx-evaldemo[dask]' "
                "(or fsspec and the filesystem's package, such as s3fs)"
            ) from None
        self.url = url.rstrip("/")
        protocol, _ = split_protocol(self.url)
        self.protocol = protocol or "file"
        if self.protocol not in fsspec.available_protocols():
            raise StoreError(f"fsspec knows no filesystem for {self.protocol}://")
        self._options = dict(options or {})
        self._made = fsspec.filesystem
        self._fs: Any = None
        self._pid = os.getpid()
        self._root: str | None = None

    @property
    def fs(self) -> Any:
        """The filesystem, made on first use; a forked process (a ``-j`` writer) makes its
        own, as fsspec asks. Any exception it raises: a missing package, refused options."""
        if self._fs is None or self._pid != os.getpid():
            self._fs = self._made(self.protocol, skip_instance_cache=True, **self._options)
            self._pid = os.getpid()
        return self._fs

    @property
    def root(self) -> str:
        if self._root is None:
            self._root = self.fs._strip_protocol(self.url).rstrip("/")
        return self._root

    def describe(self) -> str:
        return self.url

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def _relative(self, full: str) -> str:
        return full[len(self.root) + 1:] if full.startswith(self.root + "/") else full

    def probe(self, namespace: str) -> None:
        self.names(namespace)  # a missing bucket, no access: StoreError

    def exists(self, path: str) -> bool:
        try:
            return bool(self.fs.exists(self._full(path)))
        except Exception:  # noqa: BLE001
            return False

    def names(self, folder: str, limit: int | None = None,
             stale_temporaries: bool = False) -> list[str]:
        try:
            self.fs.invalidate_cache()
            names = [self._relative(name) for name in self.fs.find(self._full(folder))]
        except Exception as error:  # noqa: BLE001
            raise StoreError(_reason(error)) from None
        kept = [n for n in names if n.endswith(".json") or (stale_temporaries and "/.tmp-" in n)]
        return kept[:limit] if limit is not None else kept

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        if not paths:
            return {}
        try:
            found = self.fs.cat([self._full(p) for p in paths], on_error="omit")
        except Exception:  # noqa: BLE001  # unreadable: every one is a miss
            return {}
        return {self._relative(k): v for k, v in found.items() if isinstance(v, bytes)}

    def write(self, path: str, data: bytes) -> None:
        try:
            target = self._full(path)
            if self.protocol in _OBJECT_STORES:
                self.fs.pipe_file(target, data)  # one PUT: the object appears whole
                return
            folder, _, name = target.rpartition("/")
            temporary = f"{folder}/.tmp-{uuid.uuid4().hex}-{name}"
            self.fs.makedirs(folder, exist_ok=True)
            self.fs.pipe_file(temporary, data)
            self.fs.mv(temporary, target)
        except Exception as error:  # noqa: BLE001
            raise StoreError(_reason(error)) from None

    def delete(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if paths:
            try:
                self.fs.rm([self._full(p) for p in paths])
            except Exception as error:  # noqa: BLE001
                raise StoreError(_reason(error)) from None


def open_store(location: str, options: dict[str, Any] | None = None) -> Store:
    """A local folder for a path or a ``file://`` URL; fsspec for any other URL."""
    if location.startswith("file://"):
        return LocalStore(Path(location[len("file://"):]))
    if "://" in location:
        return FsspecStore(location, options)
    return LocalStore(Path(location))

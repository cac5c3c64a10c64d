"""Reading an ``s3://`` cache with botocore alone, for the :mod:`.snapshot` helper.

s3fs is botocore under an asyncio layer (aiobotocore, aiohttp): its import takes about
0.3 s, botocore's about 0.13 s, and the helper's whole read of a namespace races the
build to the first page that needs a result. The helper only lists and reads, which a
plain botocore client does as well, with the same credentials chain, the same
endpoint, region and retry settings.

Only where every storage option means the same to botocore as to s3fs (the credentials,
``endpoint_url``, ``client_kwargs``, ``config_kwargs``, ``profile``, ``anon``,
``use_ssl``); any other option, and any error in making the client or listing the
namespace but an endpoint that cannot be reached, leaves the read to s3fs, whose answer
(a result, or the reason the store cannot be used: no such bucket, no access) is the one
the build acts on. An object that cannot be read is left out, as the fsspec store does.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: s3fs's storage options botocore takes as they are (s3fs name: botocore name).
_CLIENT_ARGUMENTS = {
    "key": "aws_access_key_id",
    "secret": "aws_secret_access_key",
    "token": "aws_session_token",
    "endpoint_url": "endpoint_url",
    "use_ssl": "use_ssl",
}
#: The others that mean the same here; with any option not named, s3fs reads.
_UNDERSTOOD = {*_CLIENT_ARGUMENTS, "client_kwargs", "config_kwargs", "profile", "anon"}
#: Reads in flight at once (botocore's default connection pool holds 10).
_AT_ONCE = 10


class S3Reader:
    """The two reads the helper makes (:func:`~.snapshot.read_namespace`): a listing and
    the objects' bytes. Paths are relative to the URL's prefix, as the stores' are."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""

    def names(self, folder: str, limit: int | None = None, stale_temporaries: bool = False) -> list[str]:
        """Every object under ``folder`` that the fsspec store would list (see
        :meth:`.stores.FsspecStore.names`)."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=f"{self._prefix}{folder}/")
        names = [item["Key"][len(self._prefix):] for page in pages for item in page.get("Contents", ())]
        kept = [n for n in names if n.endswith(".json") or (stale_temporaries and "/.tmp-" in n)]
        return kept[:limit] if limit is not None else kept

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        """The objects that could be read; any other is left out, as the fsspec store does
        (a missing object is a 404, or a 403 to a reader who may not list the bucket)."""
        with ThreadPoolExecutor(min(_AT_ONCE, max(1, len(paths)))) as pool:
            read = dict(zip(paths, pool.map(self._read, paths), strict=True))
        return {path: data for path, data in read.items() if data is not None}

    def _read(self, path: str) -> bytes | None:
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=f"{self._prefix}{path}")
            return bytes(answer["Body"].read())
        except Exception:  # noqa: BLE001  # unreadable: a miss, as with fsspec's on_error="omit"
            return None


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the endpoint cannot be reached (no connection, timed out)."""
    try:
        from botocore.exceptions import ConnectionError as NoConnection
    except ImportError:
        return False
    return isinstance(error, NoConnection)


def s3_reader(location: str, options: dict[str, Any]) -> S3Reader | None:
    """A botocore reader of ``location``, or ``None``: not ``s3://``, no botocore, or an
    option botocore might read differently from s3fs."""
    if not location.startswith(("s3://", "s3a://")) or not set(options) <= _UNDERSTOOD:
        return None
    try:
        import botocore.config
        import botocore.session
    except ImportError:
        return None
    bucket, _, prefix = location.split("://", 1)[1].rstrip("/").partition("/")
    arguments = {_CLIENT_ARGUMENTS[name]: value for name, value in options.items() if name in _CLIENT_ARGUMENTS}
    arguments.update(options.get("client_kwargs") or {})
    config = dict(options.get("config_kwargs") or {})
    if options.get("anon"):
        config["signature_version"] = botocore.UNSIGNED
    if config:
        arguments["config"] = botocore.config.Config(**config)
    session = botocore.session.Session(profile=options.get("profile"))
    return S3Reader(session.create_client("s3", **arguments), bucket, prefix)

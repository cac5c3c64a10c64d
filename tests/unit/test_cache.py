"""The result cache: one file per key in a namespace, atomic writes, misses for anything foreign."""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from importlib import metadata
from pathlib import Path

import pytest

import sphinx_evaldemo
from sphinx_evaldemo.examples import schema
from sphinx_evaldemo.examples.cache import Cache, default_namespace, fingerprint
from sphinx_evaldemo.examples.core import longest_first
from sphinx_evaldemo.examples.model import ExampleResult, Failure, ModeRun, Segment
from sphinx_evaldemo.examples.snapshot import read_namespace
from sphinx_evaldemo.examples.stores import FsspecStore

KEY = "ab" + "0" * 62
OTHER = "cd" + "1" * 62
RESULT = ExampleResult(segments=(Segment("", "hello\n"),), seconds=0.5)


def _file(root: Path, key: str, namespace: str = "default") -> Path:
    return root / namespace / key[:2] / f"{key}.json"


def test_put_then_get(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put(KEY, RESULT)
    assert cache.get(KEY) == RESULT
    assert Cache(tmp_path).get(KEY) == RESULT  # read back from disk by another build
    assert cache.get(OTHER) is None
    assert _file(tmp_path, KEY).is_file()


def test_failures_are_stored_like_results(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    failed = ExampleResult(failure=Failure("timeout", "timed out after 1 s"))
    cache.put(KEY, failed)
    assert Cache(tmp_path).get(KEY) == failed


def test_put_replaces_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put(KEY, RESULT)
    newer = ExampleResult(segments=(Segment("", "newer\n"),))
    cache.put(KEY, newer)
    assert Cache(tmp_path).get(KEY) == newer
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{KEY}.json"]


def _stored(result: ExampleResult) -> dict[str, object]:
    data: dict[str, object] = json.loads(result.to_json())
    return data


FAILED = _stored(ExampleResult(failure=Failure("exception", "boom", exc_mro=("ValueError",))))
RAN = _stored(ExampleResult(runs=(ModeRun("train", ("tensor([1.])",)),)))


def _changed(data: dict[str, object], path: tuple[str | int, ...], value: object) -> str:
    copy = json.loads(json.dumps(data))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return json.dumps(copy)


@pytest.mark.parametrize(
    "content",
    [
        "", "{", "[]", '{"runs": 5}', '{"failure": {"kind": 1}}', "\x00\x01",
        # valid JSON of the right shape, but not what this version writes
        _changed(FAILED, ("failure", "kind"), "bogus"),  # an unknown failure kind
        _changed(FAILED, ("failure", "lineno"), "three"),
        _changed(FAILED, ("failure", "exc_mro"), "ValueError"),
        _changed(FAILED, ("seconds",), None),
        _changed(RAN, ("runs", 0, "mode"), "predict"),
        _changed(RAN, ("runs", 0, "outputs"), [1, 2]),
        _changed(RAN, ("runs", 0, "surprise"), True),
        _changed(RAN, ("segments",), [{"mode": "train"}]),
    ],
)
def test_unreadable_or_foreign_files_are_misses(tmp_path: Path, content: str) -> None:
    Cache(tmp_path).put(KEY, RESULT)
    _file(tmp_path, KEY).write_text(content, encoding="utf-8")
    assert Cache(tmp_path).get(KEY) is None


def test_prune_keeps_what_is_used(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put(KEY, RESULT)
    cache.put(OTHER, RESULT)
    assert cache.prune(keep={KEY}) == 1
    assert cache.get(KEY) == RESULT
    assert cache.get(OTHER) is None
    assert not _file(tmp_path, OTHER).exists()


def test_prune_never_touches_another_namespace(tmp_path: Path) -> None:
    ours, theirs = Cache(tmp_path, "ours"), Cache(tmp_path, "theirs")
    ours.put(KEY, RESULT)
    theirs.put(OTHER, RESULT)
    assert ours.prune(keep=set()) == 1
    assert Cache(tmp_path, "theirs").get(OTHER) == RESULT
    assert Cache(tmp_path, "ours").get(KEY) is None


@pytest.mark.parametrize(
    ("project", "namespace"),
    [("Python", "Python"), ("My Docs!", "My-Docs"), ("../..", "default"), ("naïve ünï", "na-ve-n")],
)
def test_default_namespace_is_a_safe_folder_name(project: str, namespace: str) -> None:
    assert default_namespace(project) == namespace


def test_a_file_where_the_folder_belongs_turns_the_cache_off(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder", encoding="utf-8")
    cache = Cache(blocker)
    problem = cache.check()
    assert problem is not None
    assert str(blocker) in problem
    assert "evaldemo_cache_dir" in problem
    cache.put(KEY, RESULT)  # no exception; kept for this build only
    assert cache.get(KEY) == RESULT
    assert blocker.read_text(encoding="utf-8") == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_that_cannot_be_written_turns_the_cache_off(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        cache = Cache(locked)
        assert cache.check() is not None
        assert "Permission denied" in (cache.problem or "")
    finally:
        locked.chmod(stat.S_IRWXU)


def test_a_write_that_fails_later_is_reported_once_and_reads_go_on(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.check() is None
    cache.put(KEY, RESULT)
    (tmp_path / "default" / OTHER[:2]).write_text("a file in the way", encoding="utf-8")
    cache.put(OTHER, RESULT)
    assert cache.problem is not None
    assert cache.get(KEY) == RESULT
    assert cache.has(KEY)


def test_a_url_without_its_filesystem_is_one_problem() -> None:
    cache = Cache("nosuchprotocol-xyz://bucket/prefix")
    assert cache.problem is not None
    assert "nosuchprotocol-xyz" in cache.problem
    assert cache.get(KEY) is None
    cache.put(KEY, RESULT)
    assert cache.prune(keep=set()) == 0


def test_file_url_is_a_local_folder(tmp_path: Path) -> None:
    Cache(f"file://{tmp_path}").put(KEY, RESULT)
    assert Cache(tmp_path).get(KEY) == RESULT


def test_fsspec_store_lists_once_and_reads_in_one_batch() -> None:
    """fsspec's in-memory filesystem is a real fsspec filesystem (no network)."""
    url = f"memory://evaldemo-{uuid.uuid4().hex}/prefix"
    writer = Cache(url, "proj")
    assert writer.check() is None
    keys = [f"{i:02x}" + "e" * 62 for i in range(40)]
    for key in keys:
        writer.put(key, RESULT)
    reader = Cache(url, "proj")
    assert not reader.empty()
    reader.prefetch(keys)
    assert all(reader.has(key) for key in keys)
    assert [reader.get(key) for key in keys] == [RESULT] * 40
    assert reader.get(OTHER) is None
    assert reader.prune(keep=set(keys[:10])) == 30
    assert sorted(k for k in keys if Cache(url, "proj").get(k)) == sorted(keys[:10])


def test_durations_are_merged_between_builds(tmp_path: Path) -> None:
    Cache(tmp_path).record_durations({"index:3": 1.5, "index:9": 0.25})
    Cache(tmp_path).record_durations({"index:9": 2.0})
    assert Cache(tmp_path).durations() == {"index:3": 1.5, "index:9": 2.0}
    assert Cache(tmp_path).prune(keep=set()) == 0  # durations are not a result


def test_longest_first_orders_by_recorded_time_then_page_order() -> None:
    from sphinx_evaldemo.examples.records import ExampleRecord

    records = [ExampleRecord("p", line, key=f"key-{line}") for line in (1, 2, 3, 4)]
    ordered = longest_first(records, {"key-2": 0.1, "key-4": 3.0})  # by the result's key
    assert [r.lineno for r in ordered] == [4, 2, 1, 3]


def test_fingerprint_names_the_versions_that_decide_results() -> None:
    text = fingerprint()
    assert f"torch={metadata.version('torch')}" in text
    assert f"numpy={metadata.version('numpy')}" in text
    assert f"sphinx-evaldemo={sphinx_evaldemo.__version__}" in text
    assert "python=" in text
    assert fingerprint() == text


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("failure", "kind"), "bogus", "ExampleResult.failure.kind: 'bogus' is not one of"),
        (("runs", 0, "mode"), "predict", "ExampleResult.runs[0].mode: 'predict' is not one of"),
        (("runs", 0, "outputs"), [1, 2], "ExampleResult.runs[0].outputs: expected a list of str"),
        (("runs", 0, "surprise"), True, "ExampleResult.runs[0]: unknown fields ['surprise']"),
        (("seconds",), "1.5", "ExampleResult.seconds: '1.5' is not a float"),
    ],
)
def test_a_schema_mismatch_says_where(path: tuple[str | int, ...], value: object, where: str) -> None:
    """The check is made once per type hint; the place of a mismatch is spelled out."""
    data = json.loads(_changed(RAN if path[0] != "failure" else FAILED, path, value))
    with pytest.raises(ValueError, match=re.escape(where)):
        schema.check(ExampleResult, data)
    schema.check(ExampleResult, json.loads(json.dumps(RAN)))  # the unchanged result passes


def test_the_bundle_serves_what_it_holds_and_the_rest_is_read_on_its_own() -> None:
    """What the snapshot helper reads (``read_namespace``), on a real fsspec filesystem."""
    url = f"memory://evaldemo-{uuid.uuid4().hex}/prefix"
    keys = [f"{i:02x}" + "f" * 62 for i in range(4)]
    writer = Cache(url, "proj")
    for key in keys[:3]:
        writer.put(key, RESULT)
    writer.bundle(set(keys[:3]))
    store = FsspecStore(url)
    found = read_namespace(store, "proj")
    assert found["bundled"] == sorted(keys[:3])
    writer.put(keys[3], RESULT)  # stored after the bundle was written
    found = read_namespace(store, "proj")
    assert found["bundled"] == sorted(keys[:3])
    assert {n for n in found["data"] if n.endswith(".json") and "bundle" not in n} == {
        f"proj/{k[:2]}/{k}.json" for k in keys}
    assert all(ExampleResult.from_json(found["data"][f"proj/{k[:2]}/{k}.json"]) == RESULT for k in keys)
    # a damaged bundle costs only the reads it would have saved
    store.write("proj/bundle.json", b"{not json")
    found = read_namespace(store, "proj")
    assert found["bundled"] is None
    assert all(ExampleResult.from_json(found["data"][f"proj/{k[:2]}/{k}.json"]) == RESULT for k in keys)
    # a bundled result whose object was pruned is not served: the objects are the truth
    writer.bundle(set(keys))
    writer.prune(keep=set(keys[1:]))
    found = read_namespace(store, "proj")
    assert f"proj/{keys[0][:2]}/{keys[0]}.json" not in found["data"]
    assert store.names("proj").count("proj/bundle.json") == 1  # a prune keeps the bundle


def test_the_bundle_is_written_only_when_its_keys_change() -> None:
    url = f"memory://evaldemo-{uuid.uuid4().hex}/prefix"
    writer = Cache(url, "proj")
    writer.put(KEY, RESULT)
    writer.bundle({KEY})
    store = FsspecStore(url)
    assert store.names("proj").count("proj/bundle.json") == 1
    store.delete(["proj/bundle.json"])  # so that a second write would show
    writer.bundle({KEY})
    assert "proj/bundle.json" not in store.names("proj")
    writer.put(OTHER, RESULT)
    writer.bundle({KEY, OTHER})
    assert "proj/bundle.json" in store.names("proj")

"""The result cache: one file per key in a namespace, atomic writes, misses for anything foreign."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import uuid
from importlib import metadata
from pathlib import Path

import pytest

from sphinx_evaldemo.examples import schema
from sphinx_evaldemo.examples.cache import (
    PACKAGE,
    Cache,
    child_modules,
    code_digest,
    default_namespace,
    fingerprint,
)
from sphinx_evaldemo.examples.core import longest_first
from sphinx_evaldemo.examples.model import ExampleResult, Failure, ModeRun, Segment, dumps, loads
from sphinx_evaldemo.examples.snapshot import Found, InProcess, Snapshot, found_in, read_namespace
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
    data: dict[str, object] = json.loads(dumps(result))
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


def test_fingerprint_names_the_versions_and_the_code_that_decide_results() -> None:
    text = fingerprint()
    assert f"torch={metadata.version('torch')}" in text
    assert f"numpy={metadata.version('numpy')}" in text
    assert f"code={code_digest(PACKAGE)}" in text
    assert "python=" in text
    assert fingerprint() == text


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("package") / "sphinx_evaldemo"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_child_side_is_found_from_the_imports() -> None:
    found = {path.relative_to(PACKAGE).as_posix() for path in child_modules(PACKAGE)}
    assert {"examples/worker/run.py", "examples/compare.py", "examples/detect.py", "examples/trace.py",
            "examples/model.py", "examples/worker/__main__.py", "__init__.py"} <= found
    assert not found & {"examples/render.py", "examples/directive.py", "examples/cache.py",
                        "examples/wiring.py", "extension.py", "config.py"}


CHILD_SIDE = ["examples/detect.py", "examples/trace.py", "examples/compare.py", "examples/worker/run.py",
              "examples/worker/start.py", "examples/model.py"]
BUILD_SIDE = ["examples/render.py", "examples/directive.py", "examples/core.py", "examples/cache.py",
              "examples/nodes.py", "extension.py"]


@pytest.mark.parametrize(("module", "changes"), [*((m, True) for m in CHILD_SIDE), *((m, False) for m in BUILD_SIDE)])
def test_the_key_changes_with_the_code_that_computes_results(package_copy: Path, module: str, changes: bool) -> None:
    """A change of detection or trace logic runs again what it affects; a change of how a
    result is shown does not."""
    before = code_digest(package_copy)
    assert before == code_digest(PACKAGE)  # where the package lies is not in it
    path = package_copy / module
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# changed\n")
        assert (code_digest(package_copy) != before) is changes
    finally:
        path.write_bytes(original)


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


def _reading_ahead(url: str, namespace: str = "proj") -> Snapshot:
    """The store at ``url`` read ahead, in this process (the helper's reads without its process)."""
    return Snapshot(FsspecStore(url), namespace, InProcess(FsspecStore(url), namespace))


def test_the_bundle_serves_what_it_holds_and_the_rest_is_read_on_its_own() -> None:
    """What the snapshot helper reads (``read_namespace``), on a real fsspec filesystem."""
    url = f"memory://evaldemo-{uuid.uuid4().hex}/prefix"
    keys = [f"{i:02x}" + "f" * 62 for i in range(4)]
    writer = Cache(_reading_ahead(url), "proj")
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
    assert all(loads(ExampleResult, found["data"][f"proj/{k[:2]}/{k}.json"]) == RESULT for k in keys)
    # a damaged bundle costs only the reads it would have saved
    store.write("proj/bundle.json", b"{not json")
    found = read_namespace(store, "proj")
    assert found["bundled"] is None
    assert all(loads(ExampleResult, found["data"][f"proj/{k[:2]}/{k}.json"]) == RESULT for k in keys)
    # a bundled result whose object was pruned is not served: the objects are the truth
    writer = Cache(_reading_ahead(url), "proj")
    writer.prefetch(keys)
    writer.bundle(set(keys))
    writer.prune(keep=set(keys[1:]))
    found = read_namespace(store, "proj")
    assert f"proj/{keys[0][:2]}/{keys[0]}.json" not in found["data"]
    assert store.names("proj").count("proj/bundle.json") == 1  # a prune keeps the bundle


def test_the_bundle_is_written_only_when_its_keys_change() -> None:
    url = f"memory://evaldemo-{uuid.uuid4().hex}/prefix"
    writer = Cache(_reading_ahead(url), "proj")
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


def test_a_store_that_reads_ahead_serves_what_it_read_and_passes_the_rest_on() -> None:
    """Behind the store interface the cache cannot tell: the same answers, and a name the
    read did not list is absent (not looked for again); writes and deletes go through."""
    url = f"memory://evaldemo-{uuid.uuid4().hex}/prefix"
    plain = Cache(url, "proj")
    for key in (KEY, OTHER):
        plain.put(key, RESULT)
    plain.record_durations({"page:1": 0.5})
    cache = Cache(_reading_ahead(url), "proj")
    assert cache.check() is None and cache.listed()  # the namespace is read now
    FsspecStore(url).write(f"proj/ee/{'ee' * 32}.json", dumps(RESULT).encode())  # after the read
    assert cache.has(KEY) and cache.has(OTHER) and not cache.has("ee" * 32)
    assert cache.get(KEY) == RESULT and cache.get("ee" * 32) is None
    assert cache.durations() == {"page:1": 0.5}
    third = "12" + "3" * 62
    cache.put(third, RESULT)
    assert Cache(url, "proj").get(third) == RESULT  # written through
    assert cache.prune(keep={KEY, third}) == 1  # OTHER; never what came after the read
    assert Cache(url, "proj").has("ee" * 32) and not Cache(url, "proj").has(OTHER)
    assert not cache.has(OTHER)


class _Answered:
    """A helper's answer, read earlier (as a helper reads while the build goes on)."""

    def __init__(self, found: Found) -> None:
        self.found, self.taken = found, False

    def ready(self) -> bool:
        return True

    def take(self) -> Found | None:
        self.taken = True
        return self.found

    def close(self) -> None:
        return None


def test_a_write_before_the_helper_answers_does_not_wait_and_is_not_lost() -> None:
    url = f"memory://evaldemo-{uuid.uuid4().hex}/prefix"
    Cache(url, "proj").put(KEY, RESULT)
    answer = _Answered(found_in(read_namespace(FsspecStore(url), "proj")))  # lists KEY only
    cache = Cache(Snapshot(FsspecStore(url), "proj", answer), "proj")
    cache.put(OTHER, RESULT)  # before any look-up
    assert not answer.taken
    assert cache.has(KEY) and cache.has(OTHER) and answer.taken
    assert cache.prune(keep={OTHER}) == 1
    assert not Cache(url, "proj").has(KEY) and Cache(url, "proj").get(OTHER) == RESULT

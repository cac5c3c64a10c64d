"""The result cache shared through object storage, and where the local cache lives.

S3 is moto's standalone server on 127.0.0.1, started by these tests and reached through
s3fs exactly as a real bucket would be (``evaldemo_cache_storage_options`` for conf.py,
the ``AWS_*`` environment for command-line builds). Builds use ``test-cache`` (five
examples on two pages).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples import snapshot
from sphinx_evaldemo.examples.cache import Cache, key_of
from sphinx_evaldemo.examples.model import ExampleResult, loads
from sphinx_evaldemo.examples.records import examples
from sphinx_evaldemo.examples.worker.processes import own_children
from tests.conftest import ROOTS, Build
from tests.helpers import LEFT_BEHIND, flat, warnings

s3fs = pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

BUCKET = "evaldemo-results"
REPO = Path(__file__).resolve().parents[2]
CREDENTIALS = {"key": "testing", "secret": "testing"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3fs.S3FileSystem(endpoint_url=url, skip_instance_cache=True, **CREDENTIALS).mkdir(BUCKET)
    try:
        yield url
    finally:
        server.stop()


def _bucket(endpoint: str) -> Any:
    return s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True, **CREDENTIALS)


def _on_s3(endpoint: str, prefix: str, **more: Any) -> dict[str, Any]:
    return {
        "evaldemo_cache_dir": f"s3://{BUCKET}/{prefix}",
        "evaldemo_cache_storage_options": {"endpoint_url": endpoint, **CREDENTIALS},
        **more,
    }


def _closing(app: SphinxTestApp) -> str:
    return next(line for line in app.status.getvalue().splitlines()
                if line.startswith("evaldemo: ") and "still running" not in line)


def _pages(app: SphinxTestApp) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(Path(app.outdir).glob("*.txt"))}


def _keys(app: SphinxTestApp) -> set[str]:
    return {r.key for records in examples(app.env).values() for r in records if r.key}


def _stored(endpoint: str, folder: str) -> dict[str, str]:
    """``{key: text}`` of every result object under ``folder`` of the bucket."""
    s3 = _bucket(endpoint)
    names = [n for n in s3.find(f"{BUCKET}/{folder}") if re.fullmatch(r"[0-9a-f]{64}\.json", Path(n).name)]
    return {Path(n).stem: s3.cat_file(n).decode() for n in names}


def _bundled(endpoint: str, folder: str) -> dict[str, str]:
    """``{key: text}`` of the namespace's bundle (what the last full build used)."""
    return dict(json.loads(_bucket(endpoint).cat_file(f"{BUCKET}/{folder}/bundle.json"))["results"])


def test_a_second_clean_checkout_runs_nothing(sphinx_build: Build, endpoint: str) -> None:
    first = sphinx_build("cache", copy="s3-first", confoverrides=_on_s3(endpoint, "ci"))
    second = sphinx_build("cache", copy="s3-second", confoverrides=_on_s3(endpoint, "ci"))
    assert Path(first.srcdir) != Path(second.srcdir)
    assert "5 examples ran, 0 came from the cache, 0 failed" in _closing(first)
    assert "0 examples ran, 5 came from the cache, 0 failed (" in _closing(second)
    assert _pages(second) == _pages(first)
    assert warnings(second.warning.getvalue()) == []
    # in the project's namespace (made from ``project``), one object per result
    stored = _stored(endpoint, "ci/evaldemo-cache")
    assert set(stored) == _keys(first) == _keys(second)
    # and in one bundle, for the next checkout's snapshot to read at once
    assert _bundled(endpoint, "ci/evaldemo-cache") == stored
    # nothing went to the local default folder
    assert not (Path(first.confdir) / ".evaldemo-cache").exists()
    # -j 2: forked readers and writers, the same pages from the same store
    parallel = sphinx_build("cache", copy="s3-parallel", parallel=2,
                            confoverrides=_on_s3(endpoint, "ci"))
    assert "0 examples ran, 5 came from the cache" in _closing(parallel)
    assert _pages(parallel) == _pages(first)


def test_concurrent_builds_share_one_prefix_safely(
    tmp_path: Path, endpoint: str, sphinx_build: Build
) -> None:
    """Two command-line builds at once (the endpoint from the AWS_* environment)."""
    env = {
        **os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    running = []
    for name in ("one", "two"):
        srcdir = tmp_path / name
        shutil.copytree(ROOTS / "test-cache", srcdir)
        running.append(subprocess.Popen(
            [sys.executable, "-m", "sphinx", "-b", "text", "-q",
             "-D", f"evaldemo_cache_dir=s3://{BUCKET}/concurrent",
             str(srcdir), str(srcdir / "_build" / "text")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    for process in running:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        assert "WARNING" not in err, err
    pages = [(tmp_path / n / "_build" / "text" / "index.txt").read_text() for n in ("one", "two")]
    assert pages[0] == pages[1]
    stored = _stored(endpoint, "concurrent/evaldemo-cache")
    assert len(stored) == 5
    for text in stored.values():  # every object is a whole result
        loads(ExampleResult, text)
    third = sphinx_build("cache", copy="s3-third", confoverrides=_on_s3(endpoint, "concurrent"))
    assert "0 examples ran, 5 came from the cache" in _closing(third)


def test_another_projects_prune_leaves_this_namespace_alone(
    sphinx_build: Build, endpoint: str
) -> None:
    ours = sphinx_build("cache", copy="ns-ours", confoverrides=_on_s3(endpoint, "team"))
    theirs_overrides = _on_s3(endpoint, "team", project="Their Docs")
    theirs = sphinx_build("cache", copy="ns-theirs", confoverrides=theirs_overrides)
    assert "5 examples ran" in _closing(theirs)  # its own namespace: nothing shared
    # they delete an example and rebuild in full: their stale result is pruned...
    index = Path(theirs.srcdir) / "index.md"
    index.write_text(index.read_text().replace(
        '```{evaldemo}\nprint("a script the tests delete")\n```\n', ""))
    pruned = sphinx_build("cache", copy="ns-theirs", freshenv=True, confoverrides=theirs_overrides)
    assert "0 examples ran, 4 came from the cache" in _closing(pruned)
    assert set(_stored(endpoint, "team/Their-Docs")) == _keys(pruned)
    # ...and every one of ours is still there: a new checkout of ours runs nothing
    assert set(_stored(endpoint, "team/evaldemo-cache")) == _keys(ours)
    again = sphinx_build("cache", copy="ns-ours-again", confoverrides=_on_s3(endpoint, "team"))
    assert "0 examples ran, 5 came from the cache" in _closing(again)


def test_an_unreachable_store_is_one_warning_and_the_build_goes_on(sphinx_build: Build) -> None:
    options = {"endpoint_url": "http://127.0.0.1:9", **CREDENTIALS,
               "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}}}
    app = sphinx_build("cache", copy="s3-unreachable", confoverrides={
        "evaldemo_cache_dir": f"s3://{BUCKET}/x", "evaldemo_cache_storage_options": options,
    })
    (warning,) = warnings(app.warning.getvalue())
    assert warning.type == "evaldemo.cache"
    assert f"the result cache at s3://{BUCKET}/x/evaldemo-cache cannot be used" in warning.message
    assert "Could not connect to the endpoint URL" in warning.message
    assert "5 examples ran, 0 came from the cache, 0 failed" in _closing(app)


# -- the local cache ----------------------------------------------------------------------


def test_the_default_cache_is_beside_conf_py_and_survives_removing_the_build_folder(
    sphinx_build: Build,
) -> None:
    first = sphinx_build("cache", copy="rm-build")
    cache = Path(first.confdir) / ".evaldemo-cache"
    assert (cache / "evaldemo-cache").is_dir()
    assert (cache / ".gitignore").read_text() == "*\n"  # never committed by accident
    build = Path(first.doctreedir).parent
    assert not list(build.rglob("*evaldemo-cache*"))  # nothing of it in an output folder
    shutil.rmtree(build)  # rm -rf _build
    again = sphinx_build("cache", copy="rm-build")
    assert "0 examples ran, 5 came from the cache, 0 failed (" in _closing(again)
    assert _pages(again) == _pages(first)


def _sphinx_build(*arguments: str | Path) -> str:
    """A ``sphinx-build`` command line; its output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "sphinx", *map(str, arguments)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return done.stdout


def test_make_html_and_a_direct_build_share_the_cache_and_make_clean_keeps_it(tmp_path: Path) -> None:
    """What ``make html`` and ``make clean`` run (``-M``), and the README's direct build."""
    srcdir = tmp_path / "source"
    shutil.copytree(ROOTS / "test-cache", srcdir)
    build = tmp_path / "build"
    assert "5 examples ran, 0 came from the cache" in _sphinx_build("-M", "text", srcdir, build)
    page = (build / "text" / "index.txt").read_text()
    direct = _sphinx_build("-b", "text", srcdir, build / "direct")
    assert "0 examples ran, 5 came from the cache" in direct
    assert (build / "direct" / "index.txt").read_text() == page
    _sphinx_build("-M", "clean", srcdir, build)
    assert not build.exists() or not list(build.iterdir())
    assert "0 examples ran, 5 came from the cache" in _sphinx_build("-M", "text", srcdir, build)
    assert (build / "text" / "index.txt").read_text() == page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "source"]
    assert (srcdir / ".evaldemo-cache" / "evaldemo-cache").is_dir()


def test_results_in_the_old_default_place_are_moved_once(sphinx_build: Build) -> None:
    """Before, the default was beside the doctree folder: a project's results there are
    taken over (moved, so that none stay inside an output folder that gets published)."""
    first = sphinx_build("cache", copy="old-default")
    new = Path(first.confdir) / ".evaldemo-cache"
    old = Path(first.doctreedir).parent / ".evaldemo-cache"
    shutil.move(new, old)  # where the previous version kept them
    (old / ".gitignore").unlink()
    again = sphinx_build("cache", copy="old-default", freshenv=True)
    assert "0 examples ran, 5 came from the cache, 0 failed" in _closing(again)
    assert _pages(again) == _pages(first)
    assert not old.exists()
    assert len(list((new / "evaldemo-cache").glob("??/*.json"))) == 5


def test_a_cache_folder_that_is_a_file_is_one_warning(sphinx_build: Build, tmp_path: Path) -> None:
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("someone else's file\n")
    app = sphinx_build("cache", copy="cache-file", confoverrides={"evaldemo_cache_dir": str(blocker)})
    (warning,) = warnings(app.warning.getvalue())
    assert warning.type == "evaldemo.cache"
    assert f"the result cache at {blocker}/evaldemo-cache cannot be used" in warning.message
    assert "set evaldemo_cache_dir to a folder or URL it can write" in warning.message
    assert "5 examples ran, 0 came from the cache, 0 failed" in _closing(app)
    assert "scale is 3" in flat(_pages(app)["dep.txt"])
    assert blocker.read_text() == "someone else's file\n"


def test_a_stored_result_with_an_unknown_failure_kind_is_a_miss(sphinx_build: Build) -> None:
    first = sphinx_build("cache", copy="bogus-kind")
    folder = Path(first.confdir) / ".evaldemo-cache" / "evaldemo-cache"
    files = sorted(folder.glob("??/*.json"))
    assert len(files) == 5
    for path in files:  # written by a newer version, say, that knows more kinds
        data = json.loads(path.read_text())
        data["failure"] = {"kind": "bogus", "message": "from the future", "traceback": "",
                           "exc_type": "", "exc_mro": [], "lineno": None}
        path.write_text(json.dumps(data))
    again = sphinx_build("cache", copy="bogus-kind", freshenv=True)
    assert warnings(again.warning.getvalue()) == []
    assert "5 examples ran, 0 came from the cache, 0 failed" in _closing(again)
    assert _pages(again) == _pages(first)
    assert all(loads(ExampleResult, p.read_text()).failure is None for p in files)


# -- the snapshot: the remote namespace read by a helper while Sphinx starts ---------------


def _command_line(srcdir: Path, endpoint: str, prefix: str, *more: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-c", LEFT_BEHIND, "-b", "text", *more,
         "-D", f"evaldemo_cache_dir=s3://{BUCKET}/{prefix}", str(srcdir), str(srcdir / "_build" / "text")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def test_a_build_that_only_reads_the_remote_cache_leaves_its_client_to_the_helper(
    tmp_path: Path, endpoint: str
) -> None:
    """The first checkout writes (its own s3fs client); the second only reads, so the
    snapshot helper's reads serve it: the Sphinx process never imports s3fs, and no
    helper is left."""
    shutil.copytree(ROOTS / "test-cache", tmp_path / "first")
    first = _command_line(tmp_path / "first", endpoint, "snapshot")
    assert first.returncode == 0, first.stderr
    assert "5 examples ran, 0 came from the cache" in first.stdout
    assert "s3fs imported by the Sphinx process: True" in first.stdout
    for jobs in ("1", "2"):
        srcdir = tmp_path / f"second-{jobs}"
        shutil.copytree(ROOTS / "test-cache", srcdir)
        second = _command_line(srcdir, endpoint, "snapshot", "-j", jobs)
        assert second.returncode == 0, second.stderr
        assert "WARNING" not in second.stderr, second.stderr
        assert "0 examples ran, 5 came from the cache, 0 failed (" in second.stdout
        assert "s3fs imported by the Sphinx process: False" in second.stdout
        assert "child processes left: 0" in second.stdout
        for page in ("index.txt", "dep.txt"):
            assert (srcdir / "_build" / "text" / page).read_text() == (
                tmp_path / "first" / "_build" / "text" / page).read_text()
    # a name the snapshot did not list is absent: it is not looked for again
    _bucket(endpoint).rm(f"{BUCKET}/snapshot/evaldemo-cache/durations.json")
    shutil.copytree(ROOTS / "test-cache", tmp_path / "third")
    third = _command_line(tmp_path / "third", endpoint, "snapshot")
    assert "0 examples ran, 5 came from the cache" in third.stdout, third.stderr
    assert "s3fs imported by the Sphinx process: False" in third.stdout


def test_an_edited_example_on_a_remote_cache_runs_alone_and_is_stored(
    tmp_path: Path, endpoint: str
) -> None:
    """A checkout with one example changed: the others come from the snapshot, the
    changed one runs (the executor starts once the snapshot says it must) and is stored."""
    shutil.copytree(ROOTS / "test-cache", tmp_path / "first")
    assert _command_line(tmp_path / "first", endpoint, "edited").returncode == 0
    srcdir = tmp_path / "edited"
    shutil.copytree(ROOTS / "test-cache", srcdir)
    index = srcdir / "index.md"
    index.write_text(index.read_text().replace(
        'print("a script the tests delete")', 'print("a script, edited")'))
    done = _command_line(srcdir, endpoint, "edited")
    assert done.returncode == 0, done.stderr
    assert "1 example ran, 4 came from the cache, 0 failed, 1 worker process started" in done.stdout
    assert "a script, edited" in (srcdir / "_build" / "text" / "index.txt").read_text()
    stored = _stored(endpoint, "edited/evaldemo-cache")
    assert len(stored) == 5  # the stale one pruned
    assert _bundled(endpoint, "edited/evaldemo-cache") == stored  # the bundle follows
    assert "child processes left: 0" in done.stdout


@pytest.mark.parametrize("fate", ["answers", "is killed"])
def test_a_snapshot_serves_the_cache_and_a_dead_helper_leaves_it_to_the_store(
    sphinx_build: Build, endpoint: str, fate: str
) -> None:
    """The helper is a real process against the real endpoint: killed at once, the cache
    reads the store itself and finds the same results."""
    prefix = f"helper-{fate.replace(' ', '-')}"
    first = sphinx_build("cache", copy=f"{prefix}-first", confoverrides=_on_s3(endpoint, prefix))
    options = {"endpoint_url": endpoint, **CREDENTIALS}
    before = own_children()
    started = snapshot.start(f"s3://{BUCKET}/{prefix}", "evaldemo-cache", options)
    assert started is not None
    (helper,) = own_children() - before
    if fate == "is killed":
        os.kill(helper, signal.SIGKILL)
    cache = Cache(started, "evaldemo-cache")
    assert cache.check() is None
    keys = _keys(first)
    assert all(cache.has(key) for key in keys)
    cache.prefetch(keys)
    assert all(cache.get(key) == loads(ExampleResult, text) for key, text in _stored(endpoint, f"{prefix}/evaldemo-cache").items())
    assert cache.durations()  # the first build recorded how long each example took
    assert cache.problem is None
    assert helper not in own_children()  # the helper is gone (and reaped), either way


_READ_IN_A_FRESH_PROCESS = """
import json, sys
from sphinx_evaldemo.examples import snapshot
answer = snapshot._read(sys.argv[1], "evaldemo-cache", json.loads(sys.argv[2]))
print(json.dumps({**answer, "imported": sorted(m for m in ("s3fs", "aiohttp", "aiobotocore") if m in sys.modules)}))
"""


def _read_fresh(location: str, options: dict[str, Any], **more: str) -> dict[str, Any]:
    """What the helper reads, read in a process of its own (what it imports is seen)."""
    env = {**os.environ, **more,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _READ_IN_A_FRESH_PROCESS, location, json.dumps(options)],
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_the_helper_reads_what_the_store_lists_and_says_why_it_cannot(
    sphinx_build: Build, endpoint: str
) -> None:
    """The helper's answer is the store's: every name it lists, the bytes of each result
    and hint; a store it cannot use is an error whose reason is the warning's."""
    sphinx_build("cache", copy="reader-first", confoverrides=_on_s3(endpoint, "reader"))
    options = {"endpoint_url": endpoint, **CREDENTIALS}
    location = f"s3://{BUCKET}/reader"
    answer = _read_fresh(location, options)
    stored = _stored(endpoint, "reader/evaldemo-cache")
    assert len([name for name in answer["names"] if key_of(name)]) == len(stored) == 5
    assert {key_of(name): text for name, text in answer["data"].items() if key_of(name)} == stored
    assert answer["bundled"] == sorted(stored)
    missing = _read_fresh(f"s3://no-such-bucket-{os.getpid()}/x", options)
    assert "error" in missing and "bucket" in missing["error"].lower()


_SNAPSHOT_IN_A_FRESH_PROCESS = """
import json, sys, threading
from sphinx_evaldemo.examples import snapshot
if sys.argv[3] == "thread":  # a build's process with another thread: no fork
    threading.Thread(target=threading.Event().wait, daemon=True).start()
started = snapshot.start(sys.argv[1], "evaldemo-cache", json.loads(sys.argv[2]))
how = type(started._helper._process).__name__
found = started._helper.take()
print(json.dumps({"how": how, "names": found.names, "keys": sorted(found.data)}))
"""


@pytest.mark.parametrize("threads", ["none", "thread"])
def test_the_helper_is_a_fork_of_a_build_without_threads(sphinx_build: Build, endpoint: str, threads: str) -> None:
    """``sphinx-build`` has one thread when it loads the extension: the helper is a fork
    of it (no interpreter to start). With another thread running, a fresh process."""
    sphinx_build("cache", copy=f"fork-{threads}", confoverrides=_on_s3(endpoint, f"fork-{threads}"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    options = {"endpoint_url": endpoint, **CREDENTIALS}
    done = subprocess.run([sys.executable, "-c", _SNAPSHOT_IN_A_FRESH_PROCESS, f"s3://{BUCKET}/fork-{threads}",
                           json.dumps(options), threads], env=env, capture_output=True, text=True, timeout=120, check=True)
    answer = json.loads(done.stdout)
    assert answer["how"] == ("_Forked" if threads == "none" else "Popen")
    assert len([name for name in answer["names"] if key_of(name)]) == 5
    assert answer["keys"] == sorted(name for name in answer["names"] if name.endswith(".json") and "bundle" not in name)

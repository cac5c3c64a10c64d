"""The Dask executor against a real ``distributed.LocalCluster`` with worker processes.

One cluster for the module (two worker processes, one thread each, a retry allowed for
a task whose worker died, as the docs advise for any scheduler). Pages built on it must
be byte-identical to the local executor's; a worker killed mid-example is retried, then
reported; an unreachable scheduler is one warning (or a clear stop); ``:device: cuda``
examples go only to a worker that advertises ``GPU=1``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples.records import examples
from sphinx_evaldemo.examples.wiring import SchedulerUnreachable
from tests.conftest import ROOTS, Build
from tests.helpers import LEFT_BEHIND, flat, line_of, warnings

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

REPO = Path(__file__).resolve().parents[2]
FENCE = "```{evaldemo}"
#: roots whose pages must come out the same on the cluster (crashes, timeouts, claims, rST)
PARITY_ROOTS = ("errors", "display", "claims", "rst")


#: what the docs advise for a scheduler: one retry for a task whose worker died, and one
#: task at a time per worker thread (so a death takes only the example that caused it)
SCHEDULER_SETTINGS = {
    "distributed.scheduler.allowed-failures": 1,
    "distributed.scheduler.worker-saturation": 1.0,
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with dask.config.set(SCHEDULER_SETTINGS):
        local = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        )
    client = distributed.Client(local)
    client.wait_for_workers(2, timeout=120)
    try:
        yield client
    finally:
        client.close()
        local.close()


def _dask(client: Any, **more: Any) -> dict[str, Any]:
    return {"evaldemo_executor": "dask", "evaldemo_dask_scheduler": client.scheduler.address, **more}


def _pages(app: SphinxTestApp) -> dict[str, bytes]:
    out = Path(app.outdir)
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.txt"))}


def _closing(app: SphinxTestApp) -> str:
    return next(line for line in app.status.getvalue().splitlines()
                if line.startswith("evaldemo: ") and "still running" not in line)


@pytest.mark.parametrize("root", PARITY_ROOTS)
def test_pages_on_the_cluster_are_byte_identical_to_local(
    sphinx_build: Build, cluster: Any, root: str
) -> None:
    local = sphinx_build(root, copy=f"{root}-local")
    remote = sphinx_build(root, copy=f"{root}-dask", confoverrides=_dask(cluster))
    assert _pages(remote) == _pages(local)
    assert [(w.file, w.line, w.message, w.type) for w in warnings(remote.warning.getvalue())] == [
        (w.file, w.line, w.message, w.type) for w in warnings(local.warning.getvalue())
    ]
    assert f"on the Dask cluster at {cluster.scheduler.address} (2 workers)" in _closing(remote)
    assert _closing(local).endswith("on this machine")


def _docs_copy(base: Path, name: str) -> Path:
    target = base / name
    shutil.copytree(REPO / "docs", target, ignore=shutil.ignore_patterns("_build"))
    return target


def test_the_docs_examples_on_the_cluster_match_local(
    tmp_path_factory: pytest.TempPathFactory, cluster: Any
) -> None:
    base = tmp_path_factory.mktemp("docs")
    built = {}
    for name, overrides in (("local", {}), ("dask", _dask(cluster))):
        app = SphinxTestApp("text", srcdir=_docs_copy(base, name), confoverrides=overrides)
        try:
            app.build()
        finally:
            app.cleanup()
        assert "WARNING" not in app.warning.getvalue().replace("WARNING: evaldemo", ""), name
        built[name] = app
    pages = {name: _pages(app) for name, app in built.items()}
    # the execution report says where the examples ran; every other page is the same
    assert {k for k in pages["local"] if pages["local"][k] != pages["dask"].get(k)} == {"report.txt"}
    report = flat(pages["dask"]["report.txt"].decode())
    assert f"ran on the Dask cluster at {cluster.scheduler.address} (2 workers)" in report
    assert "ran on this machine" in flat(pages["local"]["report.txt"].decode())


@pytest.fixture(scope="module")
def killed(sphinx_build: Build, cluster: Any) -> SphinxTestApp:
    app = sphinx_build("dask", confoverrides=_dask(cluster))
    cluster.wait_for_workers(2, timeout=120)  # the nannies restart what the examples killed
    return app


def test_a_worker_killed_once_is_retried_elsewhere(killed: SphinxTestApp) -> None:
    page = flat((Path(killed.outdir) / "index.txt").read_text())
    assert "the retry ran to the end" in page
    assert (Path(killed.srcdir) / "killed-once.marker").is_file()


def test_a_worker_killed_on_the_retry_too_is_that_examples_failure(killed: SphinxTestApp) -> None:
    found = warnings(killed.warning.getvalue())
    second = line_of((ROOTS / "test-dask" / "index.md").read_text(), FENCE, after="the retry ran")
    assert [(w.file, w.line, w.type) for w in found] == [("index.md", second, "evaldemo.crash")]
    (warning,) = found
    assert "the Dask workers running this example died, on the first try and on the retry" in (
        warning.message
    )
    assert "KilledWorker" in warning.message or "died while running it" in warning.message
    page = flat((Path(killed.outdir) / "index.txt").read_text())
    assert "did not run to the end:** the Dask workers running this example died" in page
    # the third example, after both deaths, still ran
    assert re.search(r"The train and eval outputs differ in \d+ of \d+ values", page)  # RReLU: random slopes in train only
    assert "3 examples ran, 0 came from the cache, 1 failed" in _closing(killed)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_an_unreachable_scheduler_is_one_warning_and_a_local_build(sphinx_build: Build) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    local = sphinx_build("basic", copy="basic-local-reference")
    app = sphinx_build("basic", copy="basic-unreachable",
                       confoverrides={"evaldemo_executor": "dask", "evaldemo_dask_scheduler": address})
    (warning,) = warnings(app.warning.getvalue())
    assert warning.type == "evaldemo.dask"
    assert f"cannot reach the Dask scheduler at {address}" in warning.message
    assert "running the examples on this machine instead" in warning.message
    assert _pages(app) == _pages(local)
    assert _closing(app).endswith("on this machine (the Dask scheduler was unreachable)")


def test_an_unreachable_scheduler_stops_the_build_when_asked(
    sphinx_build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("EVALDEMO_DASK_SCHEDULER", address)  # the address from the environment
    started = time.monotonic()
    with pytest.raises(SchedulerUnreachable) as stopped:
        sphinx_build("basic", copy="basic-unreachable-error", freshenv=True, confoverrides={
            "evaldemo_executor": "dask", "evaldemo_dask_unreachable": "error",
        })
    assert time.monotonic() - started < 60
    assert f"cannot reach the Dask scheduler at {address}" in str(stopped.value)
    assert "evaldemo_dask_unreachable = 'local'" in str(stopped.value)


# -- devices ------------------------------------------------------------------------------


@pytest.fixture
def gpu_worker(cluster: Any) -> Iterator[str]:
    """A third worker process that advertises ``GPU=1`` (it has no GPU: the routing is the test)."""
    before = set(cluster.scheduler_info(n_workers=-1)["workers"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler.address,
         "--resources", "GPU=1", "--nthreads", "1", "--no-dashboard", "--name", "gpu-worker"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        cluster.wait_for_workers(len(before) + 1, timeout=120)
        (address,) = set(cluster.scheduler_info(n_workers=-1)["workers"]) - before
        yield address
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def _routed(app: SphinxTestApp, stream: list[dict[str, Any]]) -> dict[str, set[str]]:
    """``{device: {worker addresses}}`` of the tasks that ran this build's examples."""
    device_of = {
        record.key[:16]: record.request.device
        for records in examples(app.env).values() for record in records
        if record.key and record.request
    }
    found: dict[str, set[str]] = {}
    for task in stream:
        digest = str(task["key"]).split("-")[1]  # evaldemo-<request key>-<nonce>
        if digest in device_of:  # not the warm-up tasks the build sends while it reads
            found.setdefault(device_of[digest], set()).add(task["worker"])
    return found


def test_cuda_examples_go_to_the_worker_that_advertises_a_gpu(
    sphinx_build: Build, cluster: Any, gpu_worker: str
) -> None:
    with distributed.get_task_stream(client=cluster) as stream:
        app = sphinx_build("devices", copy="devices-gpu-worker", confoverrides=_dask(cluster))
    routed = _routed(app, stream.data)
    assert routed["cuda"] == {gpu_worker}
    assert routed["auto"] | routed["cpu"]  # the others ran too, wherever there was room
    # the GPU worker has no CUDA: each cuda example says so, once
    found = warnings(app.warning.getvalue())
    assert [(w.line, w.type) for w in found] == [(9, "evaldemo.device"), (19, "evaldemo.device")]
    assert all("this machine has none (torch.cuda.is_available() is False)" in w.message for w in found)
    page = flat((Path(app.outdir) / "index.txt").read_text())
    assert page.count("did not run to the end:** needs a GPU (:device: cuda)") == 2
    assert "Ran on device: cpu" in page  # the auto example, on whichever worker


def test_with_no_gpu_anywhere_cuda_examples_need_a_gpu_and_are_not_sent(
    sphinx_build: Build, cluster: Any
) -> None:
    with distributed.get_task_stream(client=cluster) as stream:
        app = sphinx_build("devices", copy="devices-no-gpu", confoverrides=_dask(cluster))
    assert "cuda" not in _routed(app, stream.data)
    found = warnings(app.warning.getvalue())
    assert [(w.line, w.type) for w in found] == [(9, "evaldemo.device"), (19, "evaldemo.device")]
    assert all("no worker of the Dask cluster at" in w.message for w in found)
    assert all("advertises one (start one with --resources GPU=1)" in w.message for w in found)
    # "needs a GPU" is not stored: a later build with a GPU worker runs them
    again = sphinx_build("devices", copy="devices-no-gpu", freshenv=True, confoverrides=_dask(cluster))
    assert "2 examples ran, 3 came from the cache, 2 failed" in _closing(again)


# -- sphinx-build -j ----------------------------------------------------------------------

#: Sphinx's own command line, then whether this process imported torch or kept threads.
J_SCRIPT = """\
import sys, threading
from sphinx.cmd.build import build_main
status = build_main(sys.argv[1:])
print("torch imported by the Sphinx process:", "torch" in sys.modules)
print("threads left:", sorted(t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon))
sys.exit(status)
"""


def test_sphinx_build_j2_on_the_cluster_gives_the_serial_local_pages(
    tmp_path: Path, cluster: Any, sphinx_build: Build
) -> None:
    """Readers and writers fork; the client exists only between them, in the main process."""
    srcdir = tmp_path / "src"
    shutil.copytree(ROOTS / "test-parallel", srcdir)
    env = {**os.environ, "EVALDEMO_DASK_SCHEDULER": cluster.scheduler.address,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", J_SCRIPT, "-b", "text", "-j", "2", "-D", "evaldemo_executor=dask",
         str(srcdir), str(srcdir / "_build" / "text")],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "torch imported by the Sphinx process: False" in done.stdout
    assert "threads left: []" in done.stdout
    assert f"on the Dask cluster at {cluster.scheduler.address}" in done.stdout
    local = sphinx_build("parallel", copy="parallel-local-serial")
    for page in ("index", "one", "two", "three", "four"):
        ours = (srcdir / "_build" / "text" / f"{page}.txt").read_bytes()
        assert ours == (Path(local.outdir) / f"{page}.txt").read_bytes(), page


def test_a_scheduler_lost_mid_build_fails_the_running_example_without_a_hang(
    tmp_path: Path,
) -> None:
    """A scheduler of its own (killed by the test once the example has started)."""
    srcdir = tmp_path / "src"
    srcdir.mkdir()
    (srcdir / "conf.py").write_text('project = "lost"\nextensions = ["sphinx_evaldemo"]\n')
    (srcdir / "index.md").write_text(
        "# Lost\n\n```{evaldemo}\nimport pathlib, time\n"
        'pathlib.Path("started.marker").touch()\ntime.sleep(120)\n```\n'
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    scheduler_file = tmp_path / "scheduler.json"
    cli = [sys.executable, "-m"]
    scheduler = subprocess.Popen(
        [*cli, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(scheduler_file)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    worker = None
    try:
        deadline = time.monotonic() + 120
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen(
            [*cli, "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        build = subprocess.Popen(
            [sys.executable, "-m", "sphinx", "-b", "text", "-D", "evaldemo_executor=dask",
             "-D", f"evaldemo_dask_scheduler={address}", str(srcdir), str(srcdir / "_build")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        while not (srcdir / "started.marker").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (srcdir / "started.marker").exists()
        os.killpg(scheduler.pid, signal.SIGKILL)
        killed = time.monotonic()
        out, err = build.communicate(timeout=110)  # far less than the example's 120 s
        assert time.monotonic() - killed < 90
    finally:
        for process in (scheduler, worker):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    assert build.returncode == 0, err
    (warning,) = warnings(err)
    assert warning.type == "evaldemo.cluster"
    assert "the client lost the scheduler" in warning.message
    assert "the example runs again in the next build" in warning.message
    assert "1 example ran, 0 came from the cache, 1 failed" in out
    # an infrastructure failure is not stored as the example's result
    assert not list((srcdir / ".evaldemo-cache").rglob("??/*.json"))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_local_cluster_started_by_the_build_gives_the_local_pages(
    tmp_path: Path, sphinx_build: Build, jobs: str
) -> None:
    """``evaldemo_dask_scheduler = "local"``: the build's own LocalCluster, whose workers
    share one warm parent, gives the local executor's pages and leaves nothing behind."""
    srcdir = tmp_path / "src"
    shutil.copytree(ROOTS / "test-parallel", srcdir)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("EVALDEMO_DASK_SCHEDULER", None)
    done = subprocess.run(
        [sys.executable, "-c", LEFT_BEHIND, "-b", "text", "-j", jobs,
         "-D", "evaldemo_executor=dask", "-D", "evaldemo_dask_scheduler=local",
         str(srcdir), str(srcdir / "_build" / "text")],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr  # nothing from Dask (a busy dashboard port...)
    closing = next(line for line in done.stdout.splitlines() if " examples ran, " in line)
    # one warm parent for the cluster's two workers (threads of the build)
    assert closing.startswith("evaldemo: 6 examples ran, 0 came from the cache, 1 failed, 1 worker process started")
    assert closing.endswith("on a local Dask cluster (2 workers)")
    assert "torch imported by the Sphinx process: False" in done.stdout
    assert "evaldemo threads left: []" in done.stdout
    assert "child processes left: 0" in done.stdout
    local = sphinx_build("parallel", copy=f"parallel-local-reference-{jobs}")
    for page in ("index", "one", "two", "three", "four"):
        ours = (srcdir / "_build" / "text" / f"{page}.txt").read_bytes()
        assert ours == (Path(local.outdir) / f"{page}.txt").read_bytes(), page
    assert [(w.file, w.line, w.type) for w in warnings(done.stderr)] == [
        (w.file, w.line, w.type) for w in warnings(local.warning.getvalue())
    ]

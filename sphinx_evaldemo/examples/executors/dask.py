"""A Dask cluster as the executor: each example is one task, run in a process of its own.

On the Dask worker the task hands the example to a :class:`LocalExecutor` of that worker
process (made on first use, one slot per worker thread), so it runs exactly as on this
machine: a crash, a timeout or the memory limit is the example's, never the worker's.
Results cross back as JSON strings, so the Sphinx process never unpickles (or imports)
torch. The client is made lazily, in the main process, when the first example is
submitted after reading (or before reading in a serial build, where Sphinx forks
nothing), and closed in :meth:`DaskExecutor.close`, before Sphinx forks its writers.

The local cluster (``evaldemo_dask_scheduler = "local"``) runs its workers as threads of
the build's process: they share one :class:`LocalExecutor`, registered for the source
folder before the cluster starts and started (like the local executor's) before reading,
so one torch import serves them all, as it would serve the processes of one machine.

Reaching the scheduler is reported (:meth:`DaskExecutor.connect`); what then happens, a
warning and this machine or a stop, is the build's decision (:mod:`..core`).

Waits are bounded: connecting (``CONNECT_TIMEOUT``), and the whole cluster, which must
finish some example within ``STALL_AFTER`` seconds plus the longest example's timeout
while any is outstanding. A worker that dies mid-example has its task retried by the
scheduler (``distributed.scheduler.allowed-failures``; the local cluster started here
allows one retry); past that the example fails with the cause.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ..model import ExampleRequest, ExampleResult, Failure, decode, dumps, encode, loads
from ..worker.processes import STARTUP_TIMEOUT
from .local import LocalExecutor
from .warm import added_paths

#: Seconds to reach the scheduler before it counts as unreachable.
CONNECT_TIMEOUT = 10.0
#: Seconds the cluster may finish nothing (beyond the longest pending timeout) before
#: the outstanding examples are failed: no worker left, a resource no worker has.
STALL_AFTER = STARTUP_TIMEOUT + 60.0

#: The local cluster's scheduler: one retry for a task whose worker died, and one task
#: at a time per worker thread, so a worker's death is blamed on its own example only.
LOCAL_SCHEDULER = {
    "distributed.scheduler.allowed-failures": 1,
    "distributed.scheduler.worker-saturation": 1.0,
}

# -- the worker's side -------------------------------------------------------------------

_EXECUTORS: dict[str, LocalExecutor] = {}
_EXECUTORS_LOCK = threading.Lock()


def run_on_worker(request_json: str, cwd: str, paths: tuple[str, ...] = ()) -> str:
    """The task (runs in a Dask worker): one example in a process of its own, as JSON.

    ``cwd`` is the build's source folder; a worker on a machine without it (no shared
    file system) runs the example in a temporary folder. ``paths``: the folders conf.py
    put on the build's ``sys.path``, first on the example's path (where the worker's
    machine has them).
    """
    from distributed import get_worker

    worker = get_worker()
    folder = cwd if Path(cwd).is_dir() else tempfile.gettempdir()
    with _EXECUTORS_LOCK:
        executor = _EXECUTORS.get(folder)
        if executor is None:  # one per folder: a build's tasks all bring the same paths
            executor = _EXECUTORS[folder] = LocalExecutor(worker.state.nthreads, folder, paths=list(paths))
        before = executor.started
    result = executor.submit(loads(ExampleRequest, request_json)).result()
    return json.dumps({"result": encode(result), "started": executor.started - before})


# -- the build's side --------------------------------------------------------------------


class DaskExecutor:
    """Submits examples to a Dask scheduler (or a LocalCluster it starts for the build).

    ``inner``: with ``address`` ``"local"``, the executor the cluster's workers (threads of
    this process) share; its owner starts and closes it.
    """

    def __init__(self, address: str, srcdir: str, inner: LocalExecutor | None = None) -> None:
        self.srcdir = srcdir
        self.address = address
        self._paths = tuple(added_paths(sys.path))  # conf.py's, for the tasks to bring
        self.started = 0
        self._client: Any = None
        self._cluster: Any = None
        self._workers = 0
        self._lock = threading.Lock()
        #: task key -> (the future handed out, the request's timeout)
        self._pending: dict[str, tuple[Future[ExampleResult], float]] = {}
        self._tasks: dict[str, Any] = {}  # the Dask futures, held until they end
        self._last_progress = time.monotonic()
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._connecting: threading.Thread | None = None
        self._failed: str | None = None  # why the scheduler cannot be reached
        self._warming: list[Any] = []  # warm-up tasks, kept so Dask does not cancel them
        self._gpu: bool | None = None  # whether a worker advertises GPU=1 (asked once)
        self._inner = inner

    # -- connecting -------------------------------------------------------------------

    def connect(self) -> str | None:
        """Reach the scheduler (or wait for the reaching begun by :meth:`prestart`)."""
        if self._connecting is not None:
            self._connecting.join()
            self._connecting = None
        with self._lock:
            if self._client is None and self._failed is None:
                self._connect()
        return self._failed

    def _connect_and_warm(self) -> None:
        """Connect, then have every worker import torch (a serial build's reading goes on)."""
        with self._lock:
            self._connect()
        if self._client is None or self._inner is not None:  # the inner one is started
            return
        warm = dumps(ExampleRequest(code="pass"))
        for address in self._worker_info():
            with contextlib.suppress(Exception):  # only a head start; the examples decide
                self._warming.append(self._client.submit(
                    run_on_worker, warm, self.srcdir, self._paths, workers=[address], pure=False,
                    key=f"evaldemo-warm-{uuid.uuid4().hex[:8]}",
                ))

    def _connect(self) -> None:
        try:
            import distributed
        except ImportError:
            self._failed = ("the 'distributed' package is not installed: "
                            "pip install 'sphinx-evaldemo[dask]'")
            return
        try:
            if self._inner is not None:
                import dask

                size = self._inner.size
                with _EXECUTORS_LOCK:
                    _EXECUTORS[self.srcdir] = self._inner
                with dask.config.set(LOCAL_SCHEDULER):
                    self._cluster = distributed.LocalCluster(
                        n_workers=size, threads_per_worker=1, processes=False,
                        memory_limit=0, dashboard_address=None,
                        # the scheduler's HTTP server (no dashboard): any free port here
                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    )
                self._client = distributed.Client(self._cluster, timeout=CONNECT_TIMEOUT)
                self._client.wait_for_workers(size, timeout=STARTUP_TIMEOUT)
            else:
                self._client = distributed.Client(
                    self.address, timeout=CONNECT_TIMEOUT, set_as_default=False
                )
        except Exception as error:  # noqa: BLE001  # OSError, TimeoutError, a bad address...
            self._failed = f"{type(error).__name__}: {error}"
            self._release_inner()
            return
        self._workers = len(self._worker_info())
        self._watchdog = threading.Thread(target=self._watch, name="evaldemo-dask", daemon=True)
        self._watchdog.start()

    def _worker_info(self) -> dict[str, Any]:
        try:
            info: dict[str, Any] = self._client.scheduler_info(n_workers=-1)["workers"]
        except Exception:  # noqa: BLE001  # the scheduler went away: no workers
            return {}
        return info

    def _has_gpu(self) -> bool:
        if self._gpu is None:
            workers = self._worker_info().values()
            self._gpu = any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers)
        return self._gpu

    # -- the Executor interface ---------------------------------------------------------

    def prestart(self, expected: int, *, connect: bool) -> None:
        """With ``connect``, reach the scheduler and warm the workers in a thread, while
        Sphinx reads; otherwise (a client's threads must not exist when Sphinx forks) the
        connection waits for :meth:`connect`."""
        if connect and expected and self._connecting is None and self._client is None:
            self._connecting = threading.Thread(
                target=self._connect_and_warm, name="evaldemo-dask-connect", daemon=True
            )
            self._connecting.start()

    def submit(self, request: ExampleRequest, key: str = "") -> Future[ExampleResult]:
        """Send one example as a task (after :meth:`connect` has reached the scheduler)."""
        out: Future[ExampleResult] = Future()
        if self.connect() is not None:
            out.set_result(ExampleResult(failure=Failure(
                "cluster", f"the Dask scheduler at {self.address} cannot be reached ({self._failed})")))
            return out
        resources = {"GPU": 1} if request.device == "cuda" else None
        if resources and not self._has_gpu():
            out.set_result(ExampleResult(failure=Failure(
                "device", f"needs a GPU (:device: cuda), and no worker of {self.where()} "
                "advertises one (start one with --resources GPU=1)",
            )))
            return out
        name = f"evaldemo-{key[:16] or 'example'}-{uuid.uuid4().hex[:8]}"  # unique: a rerun is a new task
        with self._lock:
            if not self._pending:
                self._last_progress = time.monotonic()
            self._pending[name] = (out, request.timeout)
        task = self._tasks[name] = self._client.submit(
            run_on_worker, dumps(request), self.srcdir, self._paths,
            key=name, resources=resources, pure=False,
        )
        task.add_done_callback(lambda done: self._finished(name, done))
        return out

    def _finished(self, key: str, task: Any) -> None:
        """A task ended (in the client's callback thread): its result, or the cause."""
        with self._lock:
            entry = self._pending.pop(key, None)
            self._tasks.pop(key, None)
            self._last_progress = time.monotonic()
        if entry is None:  # the watchdog or close() answered it already
            return
        out = entry[0]
        try:
            payload = json.loads(task.result(timeout=CONNECT_TIMEOUT))
            if self._inner is None:  # a shared inner executor is counted at close
                with self._lock:
                    self.started += payload["started"]
            out.set_result(decode(ExampleResult, payload["result"]))
        except Exception as error:  # noqa: BLE001  # KilledWorker, a lost scheduler, ...
            out.set_result(ExampleResult(failure=_cluster_failure(error)))

    def _watch(self) -> None:
        """Fail what is outstanding when the cluster has finished nothing for too long."""
        while not self._stop.wait(0.5):
            with self._lock:
                if not self._pending:
                    continue
                longest = max(timeout for _, timeout in self._pending.values())
                idle = time.monotonic() - self._last_progress
                gone = self._client.status in ("closed", "closing")
                if idle < STALL_AFTER + longest and not gone:
                    continue
                stuck, self._pending, self._tasks = list(self._pending.values()), {}, {}
            why = "the client lost the scheduler" if gone else (
                f"the cluster finished no example for {idle:.0f} s")
            for out, _ in stuck:
                if not out.done():
                    out.set_result(ExampleResult(failure=Failure(
                        "cluster", f"{why} ({self.where()}); the example was given up"
                    )))

    def close(self, *, abort: bool = False) -> None:
        """Close the client (and the cluster started for the build); no thread is left."""
        if self._connecting is not None:
            self._connecting.join()
            self._connecting = None
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join()
        with self._lock:
            stuck, self._pending, self._tasks = list(self._pending.values()), {}, {}
        for out, _ in stuck:
            if not out.done():
                out.set_result(ExampleResult(failure=Failure("cluster", "the build ended first")))
        for task in self._warming:  # the processes they started count as started
            with contextlib.suppress(Exception):
                if task.done():
                    self.started += json.loads(task.result())["started"]
        self._warming = []
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        with contextlib.suppress(Exception):  # closing what may already be gone
            if client is not None:
                client.close(timeout=CONNECT_TIMEOUT)
        with contextlib.suppress(Exception):
            if cluster is not None:
                cluster.close(timeout=CONNECT_TIMEOUT)
        self._release_inner()

    def _release_inner(self) -> None:
        """The local cluster's shared executor is no longer offered to its workers."""
        inner, self._inner = self._inner, None
        with _EXECUTORS_LOCK:
            if inner is not None and _EXECUTORS.get(self.srcdir) is inner:
                del _EXECUTORS[self.srcdir]

    def where(self) -> str:
        count = max(self._workers, len(self._worker_info()) if self._client is not None else 0)
        self._workers = count
        plural = "" if count == 1 else "s"
        if self.address == "local":
            return f"a local Dask cluster ({count} worker{plural})"
        return f"the Dask cluster at {self.address} ({count} worker{plural})"


def _cluster_failure(error: BaseException) -> Failure:
    """What a task's error means for the reader of the page."""
    name = type(error).__name__
    if name == "KilledWorker":
        return Failure(
            "crash",
            "the Dask workers running this example died, on the first try and on the retry "
            f"elsewhere; it is given up ({error})",
        )
    if name in ("CancelledError", "FutureCancelledError"):
        return Failure("cluster", "the Dask cluster cancelled the task (the client lost the scheduler)")
    return Failure("cluster", f"the Dask task failed: {name}: {error}")

"""The local executor for real: results as in-process, a fresh process per example, crashes, timeouts."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from sphinx_evaldemo.examples.cache import Cache, fingerprint
from sphinx_evaldemo.examples.core import Holdings, Outcome, Situation, obtain, plan
from sphinx_evaldemo.examples.executors.local import LocalExecutor as Pool
from sphinx_evaldemo.examples.model import ExampleRequest, ExampleResult, Segment
from sphinx_evaldemo.examples.records import ExampleRecord
from sphinx_evaldemo.examples.worker.run import run_example

DROPOUT_NET = """\
import torch
import torch.nn as nn

net = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Dropout(0.5))
print("built")
"""


def _children() -> set[int]:
    """Live (not zombie) child processes of this test process."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    before = _children()
    workers = Pool(2, str(tmp_path_factory.mktemp("pool-cwd")))
    yield workers
    workers.close()
    assert _children() <= before, "workers left running after close()"


def test_worker_result_equals_the_in_process_run(pool: Pool) -> None:
    request = ExampleRequest(code=DROPOUT_NET, input="torch.randn(3, 6)", repeat=2)
    remote = pool.run(request)
    local = run_example(request, np.get_printoptions())
    assert remote.ok, remote.failure
    assert [(r.mode, r.outputs, r.deterministic, r.requires_grad) for r in remote.runs] == [
        (r.mode, r.outputs, r.deterministic, r.requires_grad) for r in local.runs
    ]
    assert remote.comparison == local.comparison
    assert remote.setup_output == local.setup_output == "built\n"
    assert remote.mode_dependent == local.mode_dependent
    assert [(m.name, m.label) for m in remote.mode_dependent] == [("net[2]", "Dropout, p=0.5")]
    assert remote.trace == local.trace
    assert remote.trace is not None and remote.trace.parting == ("net[2]",)


def test_each_example_gets_a_fresh_process_from_one_warm_parent(pool: Pool) -> None:
    started = pool.started
    code = "import os, sys\nprint(os.getpid(), sorted(m for m in sys.modules if m.split('.')[0] == 'sphinx'))\n"
    pids = set()
    for _ in range(3):
        result = pool.run(ExampleRequest(code=code))
        (segment,) = result.segments
        pid, sphinx_modules = segment.text.split(" ", 1)
        assert sphinx_modules == "[]\n"
        pids.add(pid)
    assert len(pids) == 3
    assert pool.started == started  # the same warm parent forked them all


def test_examples_run_with_the_collector_on(pool: Pool) -> None:
    """The warm parent imports torch with the collector off; its children have it on,
    as any Python process does, with the parent's objects frozen out of their collections."""
    code = "import gc\nprint(gc.isenabled(), gc.get_freeze_count() > 10_000, gc.get_threshold()[0])\n"
    result = pool.run(ExampleRequest(code=code))
    assert result.failure is None
    assert result.segments[0].text == f"True True {__import__('gc').get_threshold()[0]}\n"


def test_stray_writes_to_stdout_do_not_break_the_protocol(pool: Pool) -> None:
    code = "import os\nos.write(1, b'{not json\\n')\nprint('hello')\n"
    result = pool.run(ExampleRequest(code=code))
    assert result.ok, result.failure
    # what goes to file descriptor 1 is the example's output, in order, as python shows it
    assert result.segments == (Segment("", "{not json\nhello\n"),)
    assert pool.run(ExampleRequest(code="print(1 + 1)")).segments == (Segment("", "2\n"),)


def test_os_exit_is_a_crash_of_that_example_only(pool: Pool) -> None:
    started = pool.started
    crashed = pool.run(ExampleRequest(code="print('before')\nimport os\nos._exit(3)\n"))
    assert crashed.failure is not None
    assert crashed.failure.kind == "crash"
    assert "status 3" in crashed.failure.message
    assert crashed.segments == (Segment("", "before\n"),)  # streamed before the crash
    after = pool.run(ExampleRequest(code="print('still here')", timeout=1.0))
    assert after.ok, after.failure
    assert after.segments == (Segment("", "still here\n"),)
    assert pool.started == started  # the warm parent was not hurt


def test_segfault_is_a_crash_located_at_the_line(pool: Pool) -> None:
    crashed = pool.run(ExampleRequest(code="import ctypes\n\nctypes.string_at(0)\n"))
    assert crashed.failure is not None
    assert crashed.failure.kind == "crash"
    assert "SIGSEGV" in crashed.failure.message
    assert crashed.failure.lineno == 3
    assert "Segmentation fault" in crashed.failure.traceback
    assert pool.run(ExampleRequest(code="print('ok')")).ok


def test_timeout_kills_the_example_and_the_next_one_runs(pool: Pool) -> None:
    started = time.monotonic()
    slow = pool.run(ExampleRequest(code="import time\ntime.sleep(30)\n", timeout=1))
    assert time.monotonic() - started < 10
    assert slow.failure is not None
    assert slow.failure.kind == "timeout"
    assert slow.failure.message == "timed out after 1 s"
    assert slow.segments == ()
    printed = pool.run(ExampleRequest(code="print('one')\nprint('two')\nwhile True: pass\n", timeout=1))
    assert printed.failure is not None and printed.failure.kind == "timeout"
    assert printed.segments == (Segment("", "one\ntwo\n"),)
    assert pool.run(ExampleRequest(code="print('next')")).segments == (Segment("", "next\n"),)


def test_submitted_requests_each_get_their_own_result(pool: Pool) -> None:
    futures = [pool.submit(ExampleRequest(code=f"print({n} * 10)")) for n in range(5)]
    assert [f.result(timeout=60).segments for f in futures] == [
        (Segment("", f"{n * 10}\n"),) for n in range(5)
    ]


class Recording:
    """The real pool behind the executor interface, noting what it is asked to run."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.started = 0
        self.submitted: list[ExampleRequest] = []

    def prestart(self, expected: int, *, connect: bool) -> None:
        pass

    def connect(self) -> str | None:
        return None

    def submit(self, request: ExampleRequest, key: str = "") -> Future[ExampleResult]:
        self.submitted.append(request)
        return self.pool.submit(request)

    def close(self, *, abort: bool = False) -> None:
        pass  # the module's pool outlives each runner

    def where(self) -> str:
        return "this machine"


def test_obtain_runs_identical_examples_once_and_caches_failures(pool: Pool, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    fp = fingerprint()
    good = ExampleRequest(code="print('same')")
    bad = ExampleRequest(code="raise ValueError('cached too')")
    jobs = [
        ExampleRecord("a", 1, 2, good, good.key(fp)),
        ExampleRecord("b", 7, 8, good, good.key(fp)),
        ExampleRecord("a", 10, 11, bad, bad.key(fp)),
    ]
    executor = Recording(pool)

    def runner(execute: str) -> Iterator[Outcome]:
        held = Holdings({key for r in jobs if r.key and cache.has(key := r.key)}, cache.empty())
        return obtain(plan(jobs, held, Situation(execute=execute)), cache, executor)  # type: ignore[arg-type]

    first = list(runner("auto"))
    assert sorted(executor.submitted, key=lambda r: r.code) == sorted([good, bad], key=lambda r: r.code)
    assert sorted((o.record.docname, o.record.lineno, o.ran) for o in first) == [
        ("a", 1, True), ("a", 10, True), ("b", 7, True),
    ]
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 2

    executor.submitted.clear()
    again = list(runner("auto"))
    assert executor.submitted == []
    assert [o.ran for o in again] == [False, False, False]
    failed = next(o.result for o in again if o.record.lineno == 10)
    assert failed.failure is not None and failed.failure.exc_type == "ValueError"

    forced = list(runner("force"))
    assert len(executor.submitted) == 2
    assert all(o.ran for o in forced)

    executor.submitted.clear()
    assert list(runner("never")) == []
    assert executor.submitted == []

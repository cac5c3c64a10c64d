"""The harness around each example's process: the warm parent, what a child may break, what
it may leave behind, and what happens when the harness itself fails.

Everything here runs real processes and looks them up in ``/proc``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sphinx_evaldemo.examples.cache import Cache, fingerprint
from sphinx_evaldemo.examples.core import Holdings, Situation, obtain, plan, retried
from sphinx_evaldemo.examples.executors.local import LocalExecutor
from sphinx_evaldemo.examples.model import ExampleRequest, ExampleResult, Segment, dumps
from sphinx_evaldemo.examples.records import ExampleRecord


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that still runs (a zombie has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def gone(pids: list[int], seconds: float = 5.0) -> list[int]:
    """Those of ``pids`` still alive after ``seconds`` (an empty list is the good answer)."""
    deadline = time.monotonic() + seconds
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def pids_in(path: Path) -> list[int]:
    return [int(word) for word in path.read_text().split()]


@pytest.fixture(scope="module")
def cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("harness-cwd")


@pytest.fixture(scope="module")
def pool(cwd: Path) -> Iterator[LocalExecutor]:
    executor = LocalExecutor(2, str(cwd))
    yield executor
    executor.close()


def test_the_warm_parent_runs_one_thread_and_forks(pool: LocalExecutor) -> None:
    """A fork of a process with other threads can hang: the parent must have none."""
    assert pool.run(ExampleRequest(code="print(1)")).ok
    (parent,) = pool.pids
    assert len(list(Path(f"/proc/{parent}/task").iterdir())) == 1
    assert pool._parents[0].start == "fork"
    time.sleep(0.5)  # the last example's process is reaped; the spare for the next one waits
    children = [int(pid) for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    (spare,) = [pid for pid in children if alive(pid)]
    # a fork: the same program, no exec, but a session of its own
    assert b"sphinx_evaldemo.examples.worker" in Path(f"/proc/{spare}/cmdline").read_bytes()
    assert os.getsid(spare) == spare != os.getsid(parent)


def test_stdin_is_empty(pool: LocalExecutor) -> None:
    started = time.monotonic()
    result = pool.run(ExampleRequest(code="text = input('name? ')\n", timeout=30))
    assert time.monotonic() - started < 10
    assert result.failure is not None
    assert result.failure.exc_type == "EOFError"
    assert result.failure.lineno == 1
    read = pool.run(ExampleRequest(code="import sys, os, stat\nprint(repr(sys.stdin.read()), stat.S_ISCHR(os.fstat(0).st_mode))\n"))
    assert read.segments == (Segment("", "'' True\n"),)


def test_control_characters_are_shown_not_sent(pool: LocalExecutor) -> None:
    code = "print('\\x1b[31mred\\x1b[0m', 'bell\\x07', 'nul\\x00', 'crlf\\r\\n', end='')\nraise ValueError('bad \\x1b]0;title\\x07')\n"
    result = pool.run(ExampleRequest(code=code))
    assert result.segments == (Segment("", "\\x1b[31mred\\x1b[0m bell\\x07 nul\\x00 crlf\n"),)
    assert result.failure is not None
    assert result.failure.message == "ValueError: bad \\x1b]0;title\\x07"
    assert "\x1b" not in result.failure.traceback
    assert "\\x1b]0;title\\x07" in result.failure.traceback


LEAVES = """\
import os, subprocess, multiprocessing, time

sleeper = subprocess.Popen(["sleep", "300"])
forked = multiprocessing.get_context("fork").Process(target=time.sleep, args=(300,))
forked.start()
with open("{name}", "w") as out:
    out.write(f"{{sleeper.pid}} {{forked.pid}}")
print("started two")
"""


@pytest.mark.parametrize("ending", ["success", "exception", "timeout"])
def test_nothing_the_example_started_outlives_it(pool: LocalExecutor, cwd: Path, ending: str) -> None:
    name = f"left-{ending}.pids"
    code = LEAVES.format(name=name) + {
        "success": "", "exception": "raise RuntimeError('after starting')\n", "timeout": "time.sleep(60)\n",
    }[ending]
    result = pool.run(ExampleRequest(code=code, timeout=5))
    assert (result.failure.kind if result.failure else "ok") == {
        "success": "ok", "exception": "exception", "timeout": "timeout"}[ending]
    pids = pids_in(cwd / name)
    assert len(pids) == 2
    assert gone(pids) == []


ESCAPES = """\
import os, pathlib, time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open("escaped.pid", "w") as out:
            out.write(str(os.getpid()))
        time.sleep(300)
    os._exit(0)
os.wait()
while not os.path.exists("escaped.pid") or not pathlib.Path("escaped.pid").read_text():
    time.sleep(0.01)
print("escaped")
"""


def test_even_a_double_fork_with_setsid_is_caught(pool: LocalExecutor, cwd: Path) -> None:
    """Out of the example's process group, but adopted by the warm parent (Linux)."""
    result = pool.run(ExampleRequest(code=ESCAPES))
    assert result.ok, result.failure
    assert gone(pids_in(cwd / "escaped.pid")) == []


BREAKS_PROTOCOL = """\
import os
for fd in range(3, 64):
    try:
        os.write(fd, b"this is not a result\\n")
    except OSError:
        pass
print("wrote")
"""


def _harness_failure_never_cached(code: str, pool: LocalExecutor, tmp_path: Path) -> str:
    """Run ``code`` through the core: a harness failure, not cached, the pool still
    working afterwards; its message."""
    request = ExampleRequest(code=code)
    key = request.key(fingerprint())
    cache = Cache(tmp_path / "cache")
    planned = plan([ExampleRecord("page", 1, 2, request, key)], Holdings(), Situation())
    (outcome,) = obtain(planned, cache, pool)
    assert outcome.result.failure is not None
    assert outcome.result.failure.kind == "worker"
    assert not cache.has(key)
    assert pool.run(ExampleRequest(code="print('next')")).segments == (Segment("", "next\n"),)
    return outcome.result.failure.message


def test_a_broken_protocol_is_the_harness_and_never_cached(pool: LocalExecutor, tmp_path: Path) -> None:
    assert "not a result" in _harness_failure_never_cached(BREAKS_PROTOCOL, pool, tmp_path)


#: Well-formed JSON on the result pipe, in place of the result: not what a result holds.
MALFORMED_RESULT = """\
import json, os
line = json.dumps({**json.loads(%r), "seconds": "soon"}).encode() + b"\\n"
for fd in range(3, 64):
    try:
        os.write(fd, line)
    except OSError:
        pass
os._exit(0)
"""


def test_a_malformed_result_from_the_child_is_the_harness_and_never_cached(
    pool: LocalExecutor, tmp_path: Path,
) -> None:
    """What a child sends is checked against the schema where it enters the build."""
    message = _harness_failure_never_cached(MALFORMED_RESULT % dumps(ExampleResult()), pool, tmp_path)
    assert "ExampleResult.seconds: 'soon' is not a float" in message


def test_patching_json_breaks_nothing(pool: LocalExecutor) -> None:
    code = "import json\njson.dumps = lambda *a, **k: 'garbage'\njson.loads = None\nprint('patched')\n"
    assert pool.run(ExampleRequest(code=code)).segments == (Segment("", "patched\n"),)


def test_a_killed_warm_parent_is_replaced_and_its_examples_run_again(cwd: Path) -> None:
    executor = LocalExecutor(1, str(cwd))
    try:
        assert executor.run(ExampleRequest(code="print(0)")).ok
        (parent,) = executor.pids
        code = "import os, pathlib, time\npathlib.Path('slow.pid').write_text(str(os.getpid()))\ntime.sleep(1.5)\nprint('done')\n"
        (cwd / "slow.pid").unlink(missing_ok=True)
        future = retried(executor.submit, ExampleRequest(code=code))  # the build's retry
        deadline = time.monotonic() + 30
        while not (cwd / "slow.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        first_child = int((cwd / "slow.pid").read_text() or 0)
        os.kill(parent, signal.SIGKILL)
        result = future.result(timeout=60)
        assert result.ok, result.failure
        assert result.segments == (Segment("", "done\n"),)
        assert executor.started == 2
        assert gone([parent, first_child]) == []
    finally:
        executor.close()


def test_the_fallback_starts_a_fresh_process_per_example(cwd: Path) -> None:
    """What macOS gets (no fork of a process holding torch): the same isolation, slower."""
    executor = LocalExecutor(1, str(cwd), start="spawn")
    try:
        poison = "import builtins, os\nbuiltins.poisoned = True\nos.environ['POISON'] = '1'\nprint(os.getpid())\n"
        victim = "import builtins, os\nprint(hasattr(builtins, 'poisoned'), os.environ.get('POISON'))\n"
        first = executor.run(ExampleRequest(code=poison))
        second = executor.run(ExampleRequest(code=victim))
        assert first.ok and second.ok, (first.failure, second.failure)
        assert second.segments == (Segment("", "False None\n"),)
        assert executor._parents[0].start == "spawn"
        crashed = executor.run(ExampleRequest(code="print('up')\nimport os\nos._exit(4)\n"))
        assert crashed.failure is not None and "status 4" in crashed.failure.message
        assert crashed.segments == (Segment("", "up\n"),)
    finally:
        executor.close()


#: Changes every flag an example starts from; then prints them.
UNSETTLE = """\
import numpy as np, torch
torch.set_default_dtype(torch.float64); torch.set_grad_enabled(False); torch.set_num_threads(2)
torch.set_printoptions(precision=2); np.set_printoptions(precision=2)
"""
FLAGS = """\
import numpy as np, torch
print(torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_num_threads(),
      torch.tensor([1 / 3]), np.array([1 / 3]), np.get_printoptions()["precision"])
"""


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_every_child_starts_from_the_start_flags(cwd: Path, start: str) -> None:
    """A forked child takes the flags from the warm parent (set once before forking), a
    fresh one sets them; either way an example sees them, whatever the one before did."""
    executor = LocalExecutor(1, str(cwd), start=start)
    try:
        results = [executor.run(ExampleRequest(code=code)) for code in (FLAGS, UNSETTLE + FLAGS, FLAGS)]
        assert all(r.ok for r in results), [r.failure for r in results]
        texts = [r.segments[0].text for r in results]
        assert texts[0] == texts[2] == "torch.float32 True 1 tensor([0.3333]) [0.33333333] 8\n"
        assert texts[1] == "torch.float64 False 2 tensor([0.33]) [0.33] 2\n"
        assert executor._parents[0].start == start
    finally:
        executor.close()


def test_close_leaves_no_process(cwd: Path) -> None:
    executor = LocalExecutor(2, str(cwd))
    future = executor.submit(ExampleRequest(code="import time\ntime.sleep(30)\n"))
    time.sleep(0.5)
    (parent,) = executor.pids
    family = [parent] + [int(p) for p in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    executor.close(abort=True)
    assert future.result(timeout=10).failure is not None
    assert gone(family) == []


def test_a_parent_that_cannot_start_is_the_harness_once(tmp_path: Path) -> None:
    """A ``torch.py`` in the working directory shadows torch: the warm parent cannot start.
    Every example then fails as a harness failure, with the parent's own error, and no
    new parent is tried for each of them."""
    (tmp_path / "torch.py").write_text("raise ImportError('this is not torch')\n", encoding="utf-8")
    executor = LocalExecutor(2, str(tmp_path))
    try:
        results = [f.result(timeout=120) for f in [executor.submit(ExampleRequest(code=f"print({n})")) for n in range(3)]]
        later = executor.run(ExampleRequest(code="print('later')"))
    finally:
        executor.close()
    for result in [*results, later]:
        assert result.failure is not None
        assert result.failure.kind == "worker"
        assert "could not start (is torch installed for this Python?)" in result.failure.message
        assert "ImportError: this is not torch" in result.failure.traceback
    assert executor.started == 1


def test_submitting_never_waits_for_the_parent_to_import_torch(cwd: Path) -> None:
    """More requests than a pipe holds, handed over while the parent still imports torch:
    the build's thread (Sphinx reading pages, in a serial build) must not wait."""
    executor = LocalExecutor(2, str(cwd))
    padding = "# " + "x" * 2000 + "\n"
    try:
        executor.prestart(1)
        started = time.monotonic()
        futures = [executor.submit(ExampleRequest(code=f"{padding}print({n})")) for n in range(60)]
        handed_over = time.monotonic() - started
        results = [future.result(timeout=300) for future in futures]
    finally:
        executor.close()
    assert handed_over < 0.5  # 120 kB of requests; a pipe holds 64 kB
    assert [r.segments for r in results] == [(Segment("", f"{n}\n"),) for n in range(60)]


def _huge_pages_on_request() -> bool:
    """glibc 2.35 or later, and a kernel that gives transparent huge pages where asked."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION") or ""
        enabled = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except (OSError, ValueError):
        return False
    numbers = version.removeprefix("glibc ").split(".")
    return version.startswith("glibc ") and tuple(map(int, numbers[:2])) >= (2, 35) and "[madvise]" in enabled


@pytest.mark.parametrize("user", [None, "glibc.malloc.tcache_count=7", "glibc.malloc.hugetlb=0"])
def test_huge_pages_are_for_the_warm_parent_only(cwd: Path, monkeypatch: pytest.MonkeyPatch, user: str | None) -> None:
    """The warm parent's heap is on transparent huge pages (its forks copy few page
    tables); an example, and what it starts, sees the user's ``GLIBC_TUNABLES`` as it was,
    and a user's own ``glibc.malloc.hugetlb`` is obeyed."""
    if user is None:
        monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    else:
        monkeypatch.setenv("GLIBC_TUNABLES", user)
    executor = LocalExecutor(1, str(cwd))
    code = (
        "import os, subprocess, sys\n"
        "print(os.environ.get('GLIBC_TUNABLES'))\n"
        "command = [sys.executable, '-c', 'import os; print(os.environ.get(\"GLIBC_TUNABLES\"))']\n"
        "print(subprocess.run(command, capture_output=True, text=True).stdout, end='')\n"
    )
    try:
        result = executor.run(ExampleRequest(code=code))
        (parent,) = executor.pids
        huge = next(line for line in Path(f"/proc/{parent}/smaps_rollup").read_text().splitlines()
                    if line.startswith("AnonHugePages:"))
    finally:
        executor.close()
    assert result.ok, result.failure
    assert result.segments == (Segment("", f"{user}\n{user}\n"),)
    if _huge_pages_on_request():
        kib = int(huge.split()[1])
        if user == "glibc.malloc.hugetlb=0":
            assert kib == 0
        else:
            assert kib >= 16 * 1024  # torch's import alone leaves about 80 MB on the heap

"""An example that stops its warm parent, or itself, never hangs the build: the build ends
within the example's timeout plus a stated margin, warns at the directive, and leaves no
process behind (looked up in ``/proc``); a build killed with ``kill -9`` while its warm
parent is stopped leaves none either.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sphinx_evaldemo.examples.core import retried
from sphinx_evaldemo.examples.executors.local import STOPPED_MARGIN, WATCH_INTERVAL, LocalExecutor
from sphinx_evaldemo.examples.model import ExampleRequest, Segment
from tests.conftest import ROOTS
from tests.helpers import LEFT_BEHIND, line_of, warnings

#: The example's timeout in these pages.
TIMEOUT = 2
#: What the build may take past the example's timeout plus the margin: the watch's
#: interval, killing the processes, Sphinx writing the page and exiting.
SLACK = 5.0

PAGE = """\
# Stopped

```{{evaldemo}}
print("the build went on")
```

## the example

```{{evaldemo}}
:timeout: {timeout}

import os, signal, subprocess, time
from pathlib import Path

sleeper = subprocess.Popen(["sleep", "300"])
Path("stopped.pids").write_text(f"{{os.getpid()}} {{os.getppid()}} {{sleeper.pid}}")
Path("started.time").write_text(repr(time.time()))
print("stopping", flush=True)
{stop}
```
"""
STOPS = {
    "parent": "os.kill(os.getppid(), signal.SIGSTOP)\ntime.sleep(60)",
    "child": "os.kill(sleeper.pid, signal.SIGSTOP)\nos.kill(os.getpid(), signal.SIGSTOP)",
}


def state(pid: int) -> str:
    """The process's state letter in ``/proc`` ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def still_running(pids: list[int], seconds: float = 5.0) -> list[int]:
    """Those of ``pids`` that still exist (zombies have ended) after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (left := [pid for pid in pids if state(pid) not in ("", "Z")]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _project(tmp_path: Path, stop: str) -> tuple[Path, str]:
    srcdir = tmp_path / "stopped"
    shutil.copytree(ROOTS / "test-scripts", srcdir)
    for page in srcdir.glob("*.md"):
        page.unlink()
    source = PAGE.format(timeout=TIMEOUT, stop=stop)
    (srcdir / "index.md").write_text(source, encoding="utf-8")
    return srcdir, source


@pytest.mark.parametrize("who", ["parent", "child"])
def test_a_stopped_process_ends_the_example_not_the_build(tmp_path: Path, who: str) -> None:
    srcdir, source = _project(tmp_path, STOPS[who])
    command = [sys.executable, "-c", LEFT_BEHIND, "-b", "text", str(srcdir), str(srcdir / "_build")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    ended = time.time()
    started = float((srcdir / "started.time").read_text())
    assert ended - started < TIMEOUT + STOPPED_MARGIN + SLACK, done.stderr
    (warning,) = warnings(done.stderr)
    assert warning.file == "index.md"
    assert warning.line == line_of(source, "{evaldemo}", after="## the example")
    if who == "parent":
        assert "was stopped (SIGSTOP" in warning.message
        assert f"timeout of {TIMEOUT} s plus {STOPPED_MARGIN:g} s" in warning.message
    else:
        assert f"timed out after {TIMEOUT} s" in warning.message
    page = (srcdir / "_build" / "index.txt").read_text(encoding="utf-8")
    assert "the build went on" in page
    assert "child processes left: 0" in done.stdout, done.stderr
    assert still_running([int(pid) for pid in (srcdir / "stopped.pids").read_text().split()]) == []


def test_kill_9_of_the_build_ends_a_stopped_warm_parent(tmp_path: Path) -> None:
    """The kernel wakes the warm parent when the build dies (PR_SET_PDEATHSIG): it then
    kills the running examples at once, and what they started, before it exits."""
    srcdir, _ = _project(tmp_path, STOPS["parent"])
    (srcdir / "index.md").write_text(
        (srcdir / "index.md").read_text().replace(f":timeout: {TIMEOUT}", ":timeout: 120"), encoding="utf-8")
    build = subprocess.Popen(
        [sys.executable, "-m", "sphinx", "-b", "text", str(srcdir), str(srcdir / "_build")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        pids: list[int] = []
        while time.monotonic() < deadline and build.poll() is None:
            text = (srcdir / "stopped.pids").read_text() if (srcdir / "stopped.pids").exists() else ""
            pids = [int(pid) for pid in text.split()]
            if len(pids) == 3 and state(pids[1]) == "T":
                break
            time.sleep(0.05)
        assert len(pids) == 3 and state(pids[1]) == "T", "the example never stopped its warm parent"
        time.sleep(2 * WATCH_INTERVAL)
        assert state(pids[1]) == "T"  # still stopped: the build has not given up on it yet
        os.kill(build.pid, signal.SIGKILL)
        build.wait()
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
    assert still_running(pids) == []


def test_a_warm_parent_stopped_from_outside_is_replaced(tmp_path: Path) -> None:
    """Stopped while no example runs (by a debugger, say): the examples handed to it
    would wait for ever. It is replaced within the margin, and they run, unblamed."""
    executor = LocalExecutor(1, str(tmp_path))
    try:
        assert executor.run(ExampleRequest(code="print('first')")).ok
        (parent,) = executor.pids
        os.kill(parent, signal.SIGSTOP)
        started = time.monotonic()
        # the parent is killed and replaced; the build runs the example once more (core.retried)
        result = retried(executor.submit, ExampleRequest(code="print('second')")).result(timeout=120)
        waited = time.monotonic() - started
        assert result.ok, result.failure
        assert result.segments == (Segment("", "second\n"),)
        assert executor.started == 2
        assert waited > STOPPED_MARGIN  # not given up on at the first look
    finally:
        executor.close()
    assert still_running([parent]) == []

"""Interrupted builds: Ctrl-C (SIGINT) to a real ``sphinx-build`` while it reads, while it
waits on the runs, and while it writes keeps every result that finished, and the next
plain build reads again the pages that lack one, runs only what is missing, and gives
the same pages as a build that was never interrupted; ``-W`` never passes with a page
that says its example was not run."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOTS

EXAMPLES = 4
PAGES = ("index", "quick", "slow1", "slow2")
_RESULT = re.compile(r"^[0-9a-f]{64}\.json$")
_RAN = re.compile(r"evaldemo: (\d+) examples? ran")
NOT_RUN = "no result is stored for this example"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # the phase is read from the output as it comes
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOTS.parents[1]), env.get("PYTHONPATH")]))
    return env


def _command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "sphinx", "--no-color", "-b", "text", *extra, ".", "_build"]


def stored(root: Path) -> int:
    """How many results the cache folder holds."""
    return sum(1 for path in (root / "cache").rglob("*.json") if _RESULT.match(path.name))


def build(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(*extra), cwd=root, env=_env(), capture_output=True,
                          text=True, timeout=240, check=False)


def pages(root: Path) -> dict[str, str]:
    return {page: (root / "_build" / f"{page}.txt").read_text(encoding="utf-8") for page in PAGES}


def ran(output: str) -> int:
    found = _RAN.findall(output)
    assert len(found) == 1, output
    return int(found[0])


def interrupted(root: Path, when: Callable[[str, Path], bool]) -> str:
    """Build ``root``, send SIGINT once ``when(output so far, root)`` holds; the output."""
    process = subprocess.Popen(_command(), cwd=root, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    assert process.stdout is not None
    seen: list[str] = []
    sent = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        while chunk := os.read(process.stdout.fileno(), 65536):
            seen.append(chunk.decode("utf-8", "replace"))
            if not sent.is_set() and when("".join(seen), root):
                process.send_signal(signal.SIGINT)
                sent.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(timeout=10)
    output = "".join(seen)
    assert sent.is_set(), output
    assert process.returncode != 0, output  # it was stopped, not finished
    return output


def _reading(output: str, root: Path) -> bool:
    return "reading sources" in output and "quick" in output.split("reading sources", 1)[1]


def _running(output: str, root: Path) -> bool:
    return "evaldemo: still running" in output


def _writing(output: str, root: Path) -> bool:
    return "writing output... [" in output  # a page (not the "[mo]" step before reading)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("interrupted") / "never"
    shutil.copytree(ROOTS / "test-interrupted", root)
    done = build(root, "-W")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ran(done.stdout) == EXAMPLES
    return pages(root)


@pytest.mark.parametrize("phase", [_reading, _running, _writing], ids=["reading", "running", "writing"])
def test_a_build_after_an_interrupt_runs_what_is_missing_and_gives_the_same_pages(
    phase: Callable[[str, Path], bool], baseline: dict[str, str], tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    shutil.copytree(ROOTS / "test-interrupted", root)
    output = interrupted(root, phase)
    kept = stored(root)
    assert kept < EXAMPLES, output  # it was interrupted before the end
    if phase is not _reading:
        # the quick examples had ended long before: their results were kept
        assert kept >= 2, output

    again = build(root, "-W")
    text = again.stdout + again.stderr
    assert again.returncode == 0, text
    assert ran(again.stdout) == EXAMPLES - kept, text  # only what was missing ran
    assert stored(root) == EXAMPLES
    shown = pages(root)
    assert not any(NOT_RUN in page for page in shown.values())
    assert shown == baseline

    # and the build after that has nothing left to do
    third = build(root, "-W")
    assert third.returncode == 0, third.stdout + third.stderr
    assert ran(third.stdout) == 0
    assert f"{EXAMPLES} came from the cache" in third.stdout

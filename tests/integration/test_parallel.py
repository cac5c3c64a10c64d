"""``sphinx-build`` as users run it: ``-j 2`` gives the pages ``-j 1`` gives, and the
Sphinx process itself never imports torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOTS
from tests.helpers import outputs, warnings

PAGES = ("index", "one", "two", "three", "four")

#: Build with Sphinx's own command line, then say whether this process imported torch.
SCRIPT = """\
import sys
from sphinx.cmd.build import build_main
status = build_main(sys.argv[1:])
print("torch imported by the Sphinx process:", "torch" in sys.modules)
sys.exit(status)
"""


def _build(srcdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-c", SCRIPT, "-b", "text", *extra,
        str(srcdir), str(srcdir / "_build" / "text"),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    done = {}
    for name, extra in (("serial", ()), ("parallel", ("-j", "2"))):
        srcdir = tmp_path_factory.mktemp(name) / "src"
        shutil.copytree(ROOTS / "test-parallel", srcdir)
        done[name] = (srcdir, _build(srcdir, *extra))
    return done


@pytest.mark.parametrize("name", ["serial", "parallel"])
def test_build_succeeds_without_torch_in_the_sphinx_process(
    builds: dict[str, tuple[Path, subprocess.CompletedProcess[str]]], name: str
) -> None:
    _, done = builds[name]
    assert done.returncode == 0, done.stderr
    assert "torch imported by the Sphinx process: False" in done.stdout
    assert "evaldemo: 6 examples ran, 0 came from the cache, 1 failed" in done.stdout


def test_parallel_pages_equal_serial_pages(
    builds: dict[str, tuple[Path, subprocess.CompletedProcess[str]]],
) -> None:
    serial, parallel = builds["serial"][0], builds["parallel"][0]
    for page in PAGES:
        one = (serial / "_build" / "text" / f"{page}.txt").read_bytes()
        two = (parallel / "_build" / "text" / f"{page}.txt").read_bytes()
        assert one == two, page
    # and the pages hold real panels
    three = (serial / "_build" / "text" / "three.txt").read_text(encoding="utf-8")
    assert len(outputs(three, "model.eval()")) == 1
    assert "fails on page three" in three


def test_parallel_warnings_equal_serial_warnings(
    builds: dict[str, tuple[Path, subprocess.CompletedProcess[str]]],
) -> None:
    def located(name: str) -> list[tuple[str, int | None, str]]:
        _, done = builds[name]
        return sorted((w.file, w.line, w.type) for w in warnings(done.stderr))

    assert located("serial") == located("parallel")
    assert [(file, kind) for file, _, kind in located("serial")] == [
        ("four.md", "evaldemo.option"),
        ("three.md", "evaldemo.exception"),
    ]

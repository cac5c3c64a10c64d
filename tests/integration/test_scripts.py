"""As-written examples run as ``python example.py`` runs them, and any text they print
can be written by every builder.

Each example of the ``scripts`` root is also run here with ``python example.py`` (in
the environment the examples get: ``PYTHONUNBUFFERED=1``), and the built page must show
what that printed, stdout and stderr together, as a terminal shows them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sphinx.testing.util import SphinxTestApp

from tests.conftest import ROOTS, Build
from tests.helpers import outputs, sections, titles, warnings

SOURCE = (ROOTS / "test-scripts" / "index.md").read_text(encoding="utf-8")
_BLOCK = re.compile(r"^## (?P<name>.+?)\n\n```\{evaldemo\}\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
SCRIPTS = {match["name"]: match["code"] for match in _BLOCK.finditer(SOURCE)}


def as_terminal(raw: str) -> str:
    """What a terminal shows for ``raw``: a carriage return puts the cursor back at the
    start of the line, and what follows overwrites the line cell by cell."""
    shown = []
    for line in raw.split("\n"):
        cells: list[str] = []
        cursor = 0
        for char in line:
            if char == "\r":
                cursor = 0
                continue
            if cursor < len(cells):
                cells[cursor] = char
            else:
                cells.append(char)
            cursor += 1
        shown.append("".join(cells))
    return "\n".join(shown)


def python_prints(code: str, folder: Path) -> str:
    """What ``python example.py`` prints for ``code``: stdout and stderr in one stream."""
    (folder / "example.py").write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "example.py"], cwd=folder, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=120, check=True)
    return as_terminal(done.stdout.decode("utf-8"))


def _lines(text: str) -> list[str]:
    """Lines without trailing spaces, and no blank lines at the end (as a literal block shows them)."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


@pytest.fixture(scope="module")
def built(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("scripts", "text", copy="scripts")


@pytest.fixture(scope="module")
def page(built: SphinxTestApp) -> dict[str, str]:
    return sections((Path(built.outdir) / "index.txt").read_text(encoding="utf-8"))


def shown(chunk: str) -> tuple[list[str], str]:
    """The titles of a section's output blocks, and their text joined in page order."""
    found = titles(chunk)
    texts = []
    for number, title in enumerate(found):
        occurrence = found[:number].count(title)
        texts += outputs(chunk, title, occurrence)
    return found, "\n".join(texts)


def test_the_root_has_every_case() -> None:
    assert set(SCRIPTS) == {
        "subprocess", "stderr", "argparse", "pickle", "thread", "atexit", "progress",
        "faulthandler", "buffer", "fork", "C code", "models in a function",
    }


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_page_shows_what_python_prints(page: dict[str, str], name: str, tmp_path: Path) -> None:
    expected = python_prints(SCRIPTS[name], tmp_path)
    _, text = shown(page[name])
    assert _lines(text) == _lines(expected)
    assert _lines(expected)  # every script prints something


def test_the_cases_print_what_they_are_about(page: dict[str, str]) -> None:
    """Not only equal to Python's output: each shows the behaviour it is there for."""
    texts = {name: shown(page[name])[1] for name in SCRIPTS}
    assert "from echo\na child python\nits stderr" in texts["subprocess"]
    assert texts["argparse"] == "epochs=3 lr=0.1 prog=example.py"
    assert texts["pickle"] == "__main__ Tiny [1.0, 1.0]"
    assert texts["thread"].endswith("the thread's last line")
    assert texts["atexit"].endswith("runs first\natexit: registered first, runs last")
    assert texts["progress"] == "done.5/5\n10%"
    assert texts["faulthandler"] == "enabled: True on fd 2"
    assert "in the forked child" in texts["fork"]
    assert "printed by C" in texts["C code"]


def test_models_made_in_a_function_label_the_segments(page: dict[str, str]) -> None:
    found, _ = shown(page["models in a function"])
    assert found == ["train mode (the default)", "eval mode"]
    assert outputs(page["models in a function"], "eval mode") == ["after eval(), training: False"]


def test_no_warning(built: SphinxTestApp) -> None:
    assert warnings(built.warning.getvalue()) == []


#: Where each builder writes the unsafe page, and how it writes a backslash there.
UNSAFE = {
    "html": ("unsafe.html", "\\"),
    "text": ("unsafe.txt", "\\"),
    "man": ("scripts.1", "\\e"),
    "latex": ("scripts.tex", "\\textbackslash{}"),
}


@pytest.mark.parametrize("builder", sorted(UNSAFE))
def test_unsafe_text_is_written_escaped_by_every_builder(sphinx_build: Build, built: SphinxTestApp, builder: str) -> None:
    """A lone surrogate (a file name decoded with surrogateescape), bytes that are not
    UTF-8, NUL and other control characters: printed, raised, or printed by a compared
    example's setup. Each builder writes them escaped (before, three of them failed)."""
    app = built if builder == "text" else sphinx_build("scripts", builder, copy="scripts")
    name, backslash = UNSAFE[builder]
    data = (Path(app.outdir) / name).read_bytes()
    content = data.decode("utf-8")  # strict: no lone surrogate was written
    assert not [c for c in ("\x00", "\x07", "\x1b", "\udce9") if c in content]
    assert f"caf{backslash}udce9.txt" in content
    if builder == "text":
        assert "not UTF-8: \\xff\\xfe, a NUL: \\x00, a bell: \\x07" in content
        assert "ValueError: no such file: caf\\udce9.txt" in content
        assert "setup printed: caf\\udce9.txt \\x00" in content
    assert warnings(app.warning.getvalue()) == []

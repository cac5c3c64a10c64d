"""Faults found on the way, each one warning with the build going on: a ``:depends:`` that
is not a regular file, ``input()``, and control characters in what an example reports."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from sphinx.testing.util import SphinxTestApp

from tests.conftest import ROOTS
from tests.helpers import Warned, flat, line_of, sections, warnings

SOURCE = (ROOTS / "test-faults" / "index.md").read_text(encoding="utf-8")
RAW_CONTROLS = ("\x1b", "\x07", "\x00", "\x7f", "\x9b")
SPHINX_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SphinxTestApp | float]:
    srcdir = tmp_path_factory.mktemp("faults") / "src"
    shutil.copytree(ROOTS / "test-faults", srcdir)
    (srcdir / "zero").symlink_to("/dev/zero")
    os.mkfifo(srcdir / "fifo")  # reading it would wait for a writer forever
    (srcdir / "folder").mkdir()
    apps: dict[str, SphinxTestApp | float] = {}
    for builder in ("text", "html"):
        started = time.monotonic()
        app = SphinxTestApp(builder, srcdir=srcdir)
        try:
            app.build()
        finally:
            app.cleanup()
        apps[builder] = app
        apps[f"{builder} seconds"] = time.monotonic() - started
    return apps


@pytest.fixture(scope="module")
def text(built: dict[str, SphinxTestApp | float]) -> dict[str, str]:
    app = built["text"]
    assert isinstance(app, SphinxTestApp)
    return sections((Path(app.outdir) / "index.txt").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def warned(built: dict[str, SphinxTestApp | float]) -> list[Warned]:
    app = built["text"]
    assert isinstance(app, SphinxTestApp)
    return warnings(app.warning.getvalue())


@pytest.mark.parametrize("name", ["zero", "fifo", "folder"])
def test_depends_on_what_is_not_a_regular_file_is_refused(
    warned: list[Warned], text: dict[str, str], name: str
) -> None:
    (warning,) = [w for w in warned if f"'{name}'" in w.message]
    assert warning.type == "evaldemo.option"
    assert warning.file == "index.md"
    assert warning.line == line_of(SOURCE, "{evaldemo}", after=f"## {name}")
    assert f":depends: '{name}' is not a regular file" in warning.message
    assert "never runs" not in text[name].split("print(")[-1].split("not a regular file")[-1]
    assert "is not a regular file" in flat(text[name])


def test_input_fails_at_once_with_eof(built: dict[str, SphinxTestApp | float], warned: list[Warned], text: dict[str, str]) -> None:
    seconds = built["text seconds"]
    assert isinstance(seconds, float) and seconds < 50  # not the 60-second timeout
    (warning,) = [w for w in warned if "EOFError" in w.message]
    assert warning.type == "evaldemo.exception"
    assert warning.line == line_of(SOURCE, 'name = input("name? ")')
    body = text["input"]
    assert "asking" in body
    assert "EOFError: EOF when reading a line" in body


def test_control_characters_are_shown_escaped(warned: list[Warned], text: dict[str, str]) -> None:
    body = text["control"]
    assert "\\x1b[31mred\\x1b[0m bell\\x07 nul\\x00 del\\x7f csi\\x9b" in body
    (warning,) = [w for w in warned if w.type == "evaldemo.exception" and "ValueError" in w.message]
    assert "ValueError: bad \\x1b]0;title\\x07" in warning.message


def test_no_raw_control_character_reaches_any_output(built: dict[str, SphinxTestApp | float]) -> None:
    for builder in ("text", "html"):
        app = built[builder]
        assert isinstance(app, SphinxTestApp)
        for path in Path(app.outdir).rglob("index.*"):
            content = path.read_text(encoding="utf-8", errors="replace")
            assert not [c for c in RAW_CONTROLS if c in content], path
        stream = SPHINX_COLOURS.sub("", app.warning.getvalue())  # Sphinx's own, not ours
        assert not [c for c in RAW_CONTROLS if c in stream]
    html = built["html"]
    assert isinstance(html, SphinxTestApp)
    soup = BeautifulSoup((Path(html.outdir) / "index.html").read_text(encoding="utf-8"), "html.parser")
    shown = soup.get_text()
    assert "\\x1b]0;title\\x07" in shown


def test_the_rest_of_the_build_is_untouched(warned: list[Warned], text: dict[str, str]) -> None:
    assert "the build went on" in text["after"]
    assert len(warned) == 5, warned

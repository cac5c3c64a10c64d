"""Examples in autodoc docstrings: they import the documented module through the
``sys.path`` entry conf.py added, and their warnings are located as Sphinx locates a
docstring's problems (``src/tinynet.py:docstring of tinynet.TinyNet.broken:7``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sphinx.testing.util import SphinxTestApp

from tests.helpers import line_of, warnings


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> SphinxTestApp:
    import shutil

    from tests.conftest import ROOTS

    srcdir = tmp_path_factory.mktemp("autodoc") / "root"
    shutil.copytree(ROOTS / "test-autodoc", srcdir)
    app = SphinxTestApp("text", srcdir=srcdir)
    try:
        app.build()
    finally:
        app.cleanup()
    return app


def test_an_example_imports_the_module_conf_py_put_on_the_path(built: SphinxTestApp) -> None:
    text = (Path(built.outdir) / "index.txt").read_text(encoding="utf-8")
    assert "imported from tinynet" in text
    assert "ModuleNotFoundError" not in text
    assert "net.eval()" in text  # it ran in both modes


def test_a_broken_docstring_example_is_located_as_sphinx_locates_docstrings(built: SphinxTestApp) -> None:
    found = warnings(built.warning.getvalue())
    ours = [w for w in found if w.type == "evaldemo.exception"]
    # docutils reports an unknown role as an ERROR, which ``warnings`` leaves out
    stream = re.sub(r"\x1b\[[0-9;]*m", "", built.warning.getvalue())
    theirs = [line for line in stream.splitlines() if "notarole" in line]
    assert len(ours) == 1 and len(theirs) == 1, found
    module = Path(built.srcdir) / "src" / "tinynet.py"
    # Sphinx's own docstring problem and ours name the file the same way
    assert theirs[0].startswith(f"{module}:docstring of tinynet.TinyNet.forward:"), theirs
    assert ours[0].path == f"{module}:docstring of tinynet.TinyNet.broken"
    # the line counts inside the docstring: the raise is its 7th line
    source = module.read_text(encoding="utf-8")
    docstring_start = line_of(source, '"""An example that fails')
    assert ours[0].line == line_of(source, 'raise ValueError("broken') - docstring_start + 1 == 7
    assert "broken on purpose" in ours[0].message

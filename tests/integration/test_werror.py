"""With warnings as errors (``sphinx-build -W``), a failing example fails the build."""

from __future__ import annotations

import pytest
from sphinx.testing.util import SphinxTestApp

from tests.conftest import ROOTS
from tests.helpers import line_of, warnings


@pytest.mark.sphinx("text", testroot="werror", warningiserror=True, freshenv=True)
def test_failing_example_fails_a_strict_build(app: SphinxTestApp) -> None:
    app.build()
    assert app.statuscode == 1
    assert "with warnings treated as errors" in app.status.getvalue()
    (warning,) = warnings(app.warning.getvalue())
    source = (ROOTS / "test-werror" / "index.md").read_text(encoding="utf-8")
    assert warning.line == line_of(source, 'raise ValueError("this example fails")')
    assert "ValueError: this example fails" in warning.message
    # the page is still written, with the traceback
    page = (app.outdir / "index.txt").read_text(encoding="utf-8")
    assert "ValueError: this example fails" in page
    assert "about to fail" in page

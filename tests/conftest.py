"""Shared fixtures: Sphinx's own test fixtures, the test roots, and builds kept per module."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sphinx.testing.util import SphinxTestApp

pytest_plugins = ("sphinx.testing.fixtures",)

ROOTS = Path(__file__).parent / "roots"

Build = Callable[..., SphinxTestApp]


@pytest.fixture(scope="session")
def rootdir() -> Path:
    return ROOTS


@pytest.fixture(scope="session")
def sphinx_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    """Build a test root outside a test function (for module- and session-scoped builds).

    ``copy`` names the copy of the root: builds that share it share the sources, the
    doctrees and so the result cache; a new name is a clean checkout. The app is
    cleaned up straight after the build; its outputs and streams stay readable.
    """
    base = tmp_path_factory.mktemp("builds")

    def build(
        testroot: str,
        buildername: str = "text",
        *,
        copy: str | None = None,
        freshenv: bool = False,
        confoverrides: dict[str, Any] | None = None,
        parallel: int = 0,
    ) -> SphinxTestApp:
        srcdir = base / (copy or testroot)
        if not srcdir.exists():
            shutil.copytree(ROOTS / f"test-{testroot}", srcdir)
        app = SphinxTestApp(
            buildername,
            srcdir=srcdir,
            freshenv=freshenv,
            confoverrides=confoverrides,
            parallel=parallel,
        )
        try:
            app.build()
        finally:
            app.cleanup()
        return app

    return build


@pytest.fixture(scope="session")
def basic_text(sphinx_build: Build) -> SphinxTestApp:
    """The basic root built once with the text builder (its copy is reused by other builders)."""
    return sphinx_build("basic", "text")

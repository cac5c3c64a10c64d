"""What the browser tests share: Debian's Chromium (one for the session), an HTTP server
over built pages, and the rule that these tests skip locally but fail under CI=true."""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: What the builds import: the themes (alabaster comes with Sphinx) and the neighbours.
PACKAGES = ("furo", "pydata_sphinx_theme", "sphinx_rtd_theme", "sphinx_book_theme",
            "sphinx_copybutton", "sphinx_design")


def require(reason: str | None) -> None:
    """Skip for want of ``reason``; under CI=true, fail: CI must not go green without these tests."""
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser tests must run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def missing_packages(*names: str) -> str | None:
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    return f"not installed: {', '.join(missing)} (pip install -e '.[browser]')" if missing else None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium, one for every browser test (Playwright's sync API allows one
    driver at a time in a thread)."""
    require(missing_packages("playwright", "axe_playwright_python"))
    require(None if CHROMIUM.exists() else f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 over ``root``, quiet; its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()

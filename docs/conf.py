"""Sphinx configuration for the sphinx-evaldemo documentation."""

from __future__ import annotations

import sys
from pathlib import Path

# Build from a checkout without installing: the package lives one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "sphinx-evaldemo"
author = "sphinx-evaldemo contributors"
copyright = "2026, sphinx-evaldemo contributors"

# sphinx_evaldemo loads myst_parser itself, so it is not listed here.
extensions = ["sphinx_evaldemo"]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

html_theme = "alabaster"

# Every example on these pages is run for real when the docs are built.
evaldemo_timeout = 60

# The docs have no fixed public address yet, so the articles' Atom feeds link relatively
# (see "Atom feeds" in articles-format.md); set html_baseurl and drop this when they do.
suppress_warnings = ["evaldemo.feeds"]

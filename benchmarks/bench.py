"""Build-time benchmark: sphinx-evaldemo against plain code blocks, the raw run, and others.

One run generates a corpus of pages with small Dropout/BatchNorm models (five examples a
page) for each size asked for, renders it several ways, builds each rendering in fresh
subprocesses, and reports medians and the ratios of the targets in issue 4:

* plain ```` ```python ```` fences built by Sphinx without the extension (the static build);
* the same code run once in one plain Python process, ``import torch`` included (the floor);
* ```` ```{evaldemo} ```` with ``:input:``: clean build with a cold and with a warm cache,
  a rebuild with no change, after a prose edit, after a one-example code edit, ``-j 2``;
* with ``--competitors``: sphinx-gallery, MyST-NB (with its jupyter-cache) and
  jupyter-sphinx, when the interpreter that runs the builds can import them.

Standard library only; the builds run under ``--python`` (default: this interpreter)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalbench.cli import main  # after the path is set

if __name__ == "__main__":
    sys.exit(main())

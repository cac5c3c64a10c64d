"""Writing pages while examples run: a serial build writes each page once its own
examples are done; a build with forked writers (``-j``) waits for all of them first.

Real projects and real examples: the second page's example sleeps and writes down when
it ended; the first page's HTML file says when it was written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples import wiring
from tests.helpers import warnings_of

QUICK = """\
# A quick page

```{evaldemo}
:input: torch.randn(4, 3)

import torch
import torch.nn as nn

net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
```

```{evaldemo}
raise ValueError("the quick page's failing example")
```
"""

SLOW = """\
# A slow page

```{evaldemo}
import time
from pathlib import Path

time.sleep(2.5)
Path("slow-ended").write_text(repr(time.time()), encoding="utf-8")
print("slept")
```
"""


def _build(tmp_path: Path, parallel: int) -> tuple[SphinxTestApp, float, float]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('project = "overlap"\nextensions = ["sphinx_evaldemo"]\nevaldemo_workers = 2\n',
                                 encoding="utf-8")
    (src / "index.md").write_text("# Overlap\n\n```{toctree}\na_quick\nb_slow\n```\n", encoding="utf-8")
    (src / "a_quick.md").write_text(QUICK, encoding="utf-8")
    (src / "b_slow.md").write_text(SLOW, encoding="utf-8")
    app = SphinxTestApp("html", srcdir=src, parallel=parallel)
    try:
        app.build()
    finally:
        app.cleanup()
    written = (app.outdir / "a_quick.html").stat().st_mtime
    ended = float((src / "slow-ended").read_text(encoding="utf-8"))
    return app, written, ended


def _checks(app: SphinxTestApp) -> None:
    assert app.statuscode == 0
    (warning,) = warnings_of(app)
    assert "a_quick.md:13" in warning and "the quick page's failing example" in warning
    assert "slept" in (app.outdir / "b_slow.html").read_text(encoding="utf-8")
    run = wiring.runner(app)
    assert (run.ran, run.failed) == (3, 1)


def test_a_serial_build_writes_a_page_while_later_examples_run(tmp_path: Path) -> None:
    app, written, ended = _build(tmp_path, parallel=0)
    _checks(app)
    assert written < ended - 0.5, "the quick page waited for the slow page's example"


@pytest.mark.parametrize("parallel", [2])
def test_forked_writers_start_after_every_example(tmp_path: Path, parallel: int) -> None:
    app, written, ended = _build(tmp_path, parallel=parallel)
    _checks(app)
    assert written > ended

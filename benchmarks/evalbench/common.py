"""Paths, constants and the Sphinx wrapper shared by every part of the benchmark."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # benchmarks/
REPO = HERE.parent
PER_PAGE = 5
IMPORTS = "import torch\nimport torch.nn as nn\n"

#: Runs Sphinx's own entry point (what ``python -m sphinx`` runs), then records what the
#: Sphinx process itself cost: its peak RSS, its children's, whether torch got in, and when
#: each Sphinx event was emitted (to split the wall time into phases).
WRAPPER = """\
import time
wrapper_start = time.time()
import json, resource, sys
from sphinx.events import EventManager
from sphinx.search import IndexBuilder
spans, feed = {}, [0.0]
def timed(function, record):
    def wrapper(self, *args, **kwargs):
        start = time.time()
        try:
            return function(self, *args, **kwargs)
        finally:
            record(args, start, time.time())
    return wrapper
def event(args, start, end):
    span = spans.setdefault(str(args[0]), [start, end, 0.0, 0])
    span[1] = end
    span[2] += end - start
    span[3] += 1
def fed(args, start, end):
    feed[0] += end - start
EventManager.emit = timed(EventManager.emit, event)
IndexBuilder.feed = timed(IndexBuilder.feed, fed)
from sphinx.cmd.build import main
main_start = time.time()
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as stream:
    json.dump({
        "rc": code,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "torch_loaded": "torch" in sys.modules,
        "wrapper_start": wrapper_start, "main_start": main_start, "main_end": time.time(),
        "events": spans, "search_feed": feed[0],
    }, stream)
sys.exit(code)
"""

CLOSING = re.compile(
    # both forms: "1 example ran, ..., 2 worker processes started" and the older
    # "1 examples ran, ..., 2 workers started" (a --rev before issue 23)
    r"evaldemo: (?P<ran>\d+) examples? ran, (?P<cached>\d+) came from the cache, "
    r"(?P<failed>\d+) failed(?:, (?P<workers>\d+) worker(?:s| process| processes) started)? "
    r"\((?P<seconds>[\d.]+) s\)"
)


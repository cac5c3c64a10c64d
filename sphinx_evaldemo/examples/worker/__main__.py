"""The worker process: imports torch once, then runs example after example.

Protocol: one JSON object per line. The worker writes ``{"ready": ...}`` once torch is
imported, then answers each request line with one result line. File descriptor 1 is
kept for the protocol only; anything else written to it (by C code, say) goes to
stderr. Never imports Sphinx.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import threading
import time
from typing import Any

import numpy as np
import torch

from ..model import ExampleRequest
from .run import run_example


def _exit_with_parent(parent: int) -> None:
    """End this worker when the build that started it is gone (killed, Ctrl-C)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main() -> None:
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray writes to fd 1 (C code, subprocesses) must not break the protocol
    faulthandler.enable(file=sys.stderr)
    numpy_print: dict[str, Any] = dict(np.get_printoptions())
    protocol.write(json.dumps({"ready": True, "pid": os.getpid(), "torch": torch.__version__}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = ExampleRequest.from_dict(json.loads(line))
        result = run_example(request, numpy_print)
        protocol.write(result.to_json() + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()

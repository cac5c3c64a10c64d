"""The worker program: the warm parent (``--size N --start fork|spawn``) or one child (``--child``).

The warm parent imports torch and numpy once, runs a small example itself so that
torch's lazy set-up is done before any fork, checks that it started no thread, and
then serves requests (see :mod:`.parent`). Its fd 1 is kept for the protocol only;
anything else written there (by C code, say) goes to stderr. Never imports Sphinx.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..prctl import wake_when_parent_dies
from .parent import FORK, SPAWN, WarmParent
from .processes import Stop, stop_on_sigterm

#: What the warm parent runs once before forking: imports and torch's lazy set-up.
WARM_UP = """\
import torch
import torch.nn as nn

net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(0.5))
print(net)
"""


def threads() -> int:
    """Threads of this process (Linux); 1 where that cannot be read."""
    try:
        return len(list(Path("/proc/self/task").iterdir()))
    except OSError:
        return 1


def warm(start: str) -> tuple[str, dict[str, Any]]:
    """Import torch and numpy, warm them up; fall back to ``spawn`` if a thread appeared."""
    import numpy as np

    numpy_print: dict[str, Any] = dict(np.get_printoptions())
    if start != FORK:
        return start, numpy_print
    from ..model import ExampleRequest
    from .run import run_example
    from .start import set_for_forks

    run_example(ExampleRequest(code=WARM_UP, input="torch.randn(3, 4)"), numpy_print)
    set_for_forks(numpy_print)  # before the count: nothing after it may start a thread
    if threads() > 1:
        return SPAWN, numpy_print  # a fork would copy a process whose other threads vanish
    # Children's collections then skip (and do not copy) the parent's objects. No
    # collection first: it would cost every build about 85 ms for a few MB of garbage.
    gc.freeze()
    return start, numpy_print


def drop_tunables(added: str) -> None:
    """Take ``added``, which the build put last, out of ``GLIBC_TUNABLES`` again."""
    value = os.environ.get("GLIBC_TUNABLES", "").removesuffix(added).removesuffix(":")
    if value:
        os.environ["GLIBC_TUNABLES"] = value
    else:
        os.environ.pop("GLIBC_TUNABLES", None)


def main(argv: list[str]) -> None:
    # No collections while torch is imported (it makes hundreds of thousands of objects,
    # none of them garbage): the import takes about 70 ms less. On again before any
    # example runs, so examples run as in any Python process.
    gc.disable()
    if argv[:1] == ["--child"]:
        from .child import spawned

        gc.enable()
        spawned(argv[1:])
        return
    wake_when_parent_dies()  # even stopped by an example, it notices the build is gone
    options = dict(zip(argv[::2], argv[1::2], strict=False))
    if "--tunables" in options:  # glibc has read them: what examples start gets the user's own
        drop_tunables(options["--tunables"])
    stop_on_sigterm()
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray writes to fd 1 (C code, subprocesses) must not break the protocol
    faulthandler.enable(file=sys.stderr)
    try:
        start, numpy_print = warm(options.get("--start", FORK))
        gc.enable()
        import torch

        ready = {"ready": True, "pid": os.getpid(), "start": start, "torch": torch.__version__}
        protocol.write(json.dumps(ready) + "\n")
        protocol.flush()
        WarmParent(int(options.get("--size", "1")), start, protocol, numpy_print).serve()
    except Stop:
        pass  # stopped before serving (still importing torch): nothing was started
    # Everything this process started is killed and reaped by now. An orderly
    # interpreter exit would tear torch down for about 0.4 s, and the build waits for
    # this exit; closing the protocol first tells the build that the clean-up is done.
    with contextlib.suppress(OSError):
        protocol.close()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])

"""What every example starts from: the seeds, the global flags, and what is put back after it."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch


def seed_all(seed: int) -> None:
    if torch.cuda.is_available():
        torch.manual_seed(seed)  # every device's generator too
    else:
        # torch.manual_seed would also queue lazy seeding of CUDA, XPU and MTIA,
        # formatting a stack trace each time: a third of a small example's cost.
        torch.default_generator.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


#: Whether this process holds the start flags and has run no example since they were
#: set: the warm parent sets them before it forks (:func:`set_for_forks`), so a forked
#: child, which runs one example, need not set them again (0.8 ms and ~200 page copies).
_flags_set = False


def start_flags(numpy_print: dict[str, Any]) -> None:
    """The global flags every example starts from."""
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    torch.set_printoptions(profile="default", sci_mode=None)  # type: ignore[no-untyped-call]  # torch leaves it untyped
    torch.set_num_threads(1)
    np.set_printoptions(**numpy_print)


def set_for_forks(numpy_print: dict[str, Any]) -> None:
    """Set the start flags in the warm parent, for the children it forks to inherit."""
    global _flags_set  # this process's state, as torch's flags are
    start_flags(numpy_print)
    _flags_set = True


@contextlib.contextmanager
def isolated(numpy_print: dict[str, Any], *, fresh: bool = False) -> Iterator[None]:
    """Set the global flags an example starts from; undo what it changes in the process.

    In a ``fresh`` process (a child that runs this one example and exits) nothing can
    outlive the example, so modules, paths and the folder are not put back: the
    snapshot of ``sys.modules`` alone costs a child about 2.5 ms of copy-on-write faults.
    """
    global _flags_set  # see set_for_forks
    if not fresh:
        modules, path, cwd = set(sys.modules), list(sys.path), Path.cwd()
    if not (fresh and _flags_set):
        start_flags(numpy_print)
    _flags_set = False  # the example may change them
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # changing filters also resets "once" state
            yield
    finally:
        if not fresh:
            os.chdir(cwd)
            sys.path[:] = path
            for name in set(sys.modules) - modules:
                module = sys.modules[name]
                origin = getattr(module, "__file__", None) or ""
                if not origin.startswith((sys.prefix, sys.base_prefix)):
                    del sys.modules[name]

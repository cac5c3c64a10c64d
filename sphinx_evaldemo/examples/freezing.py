"""Python's cyclic collector during a build: what exists before reading is frozen, and
everything at the interpreter's exit. The one place the package touches ``gc``.

Before any page is read, what exists (modules, the configuration, the saved environment)
lives to the end of the build anyway, yet every full collection while the pages are read
and written would walk all of it again, and the pages of examples allocate enough to set
off many of them. Frozen objects are left out of collections (and forked ``-j`` workers
do not copy them for the collector). Freezing later, once the pages are read, would also
freeze the doctrees Sphinx keeps until it writes them, and keep them alive to the end of
the build. :func:`thaw` undoes it when the build ends, so a process that runs several
builds collects normally between them.

At exit, the interpreter's last collections would walk every object the builds made only
to free memory the operating system takes back anyway; Python does not promise to
finalize what is alive at exit, and nothing here or in Sphinx relies on it. Where ``gc``
has no ``freeze`` (another Python implementation), nothing is done.
"""

from __future__ import annotations

import atexit
import gc
from typing import TYPE_CHECKING, Any
from weakref import WeakSet

if TYPE_CHECKING:
    from sphinx.application import Sphinx

#: builds whose objects :func:`freeze` froze
_FROZEN: WeakSet[Sphinx] = WeakSet()
_CAN = hasattr(gc, "freeze") and hasattr(gc, "unfreeze")


def freeze(app: Sphinx) -> None:
    """Freeze what exists now, until :func:`thaw` (once per build)."""
    if _CAN and app not in _FROZEN:
        gc.freeze()
        _FROZEN.add(app)


def on_before_read(app: Sphinx, env: Any, docnames: list[str]) -> None:
    freeze(app)


def thaw(app: Sphinx) -> None:
    """The build is over: its objects are collected as usual again."""
    if app in _FROZEN:
        _FROZEN.discard(app)
        gc.unfreeze()


def freeze_at_exit() -> None:
    """Freeze everything at the interpreter's exit (registered once per process; it holds
    nothing of any build)."""
    if _CAN:
        atexit.unregister(gc.freeze)
        atexit.register(gc.freeze)

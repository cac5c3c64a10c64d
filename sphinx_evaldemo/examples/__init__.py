"""Examples: the ``evaldemo`` directive, from the page to a result to the page's nodes.

The worker side (:mod:`.worker`) imports this package too, so nothing here imports
Sphinx or torch at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sphinx.application import Sphinx


def setup(app: Sphinx) -> None:
    """Wire the examples feature into Sphinx (called by :mod:`sphinx_evaldemo.extension`)."""
    from . import wiring

    wiring.setup(app)


"""Run PyTorch examples in train and eval mode when Sphinx builds the docs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sphinx.application import Sphinx

__version__ = "0.1.0"


def setup(app: Sphinx) -> dict[str, Any]:
    """Sphinx entry point: the settings and the head start first (torch, or a remote
    cache, loads while Sphinx sets up the rest; the modules they need are few), then
    the wiring, in :mod:`sphinx_evaldemo.extension`."""
    from .config import register
    from .examples import head_start

    register(app)
    head_start(app)
    from .extension import setup_extension

    return setup_extension(app)

"""Run PyTorch examples in train and eval mode when Sphinx builds the docs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sphinx.application import Sphinx

__version__ = "0.1.0"


def setup(app: Sphinx) -> dict[str, Any]:
    """Sphinx entry point: registration only, in :mod:`sphinx_evaldemo.extension` (what
    runs examples starts from Sphinx's events)."""
    from .extension import setup_extension

    return setup_extension(app)

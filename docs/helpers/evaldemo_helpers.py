"""A small model factory shared by examples in the docs.

The examples run with the docs' source folder as their working directory and first
import path, so they can write ``from helpers.evaldemo_helpers import make_net``.
Examples that import this file list it in ``:depends:``, so editing it runs them again.
"""

from __future__ import annotations

import torch.nn as nn


def make_net(features: int = 4, hidden: int = 6, classes: int = 2, p: float = 0.5) -> nn.Module:
    """A classifier head: Linear, ReLU, Dropout(p), Linear."""
    return nn.Sequential(
        nn.Linear(features, hidden),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(hidden, classes),
    )

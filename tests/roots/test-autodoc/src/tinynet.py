"""A tiny network whose docstrings hold evaldemo examples."""

import torch.nn as nn


class TinyNet(nn.Module):
    """A linear layer, then dropout.

    .. evaldemo::
       :input: torch.ones(1, 4)

       import torch
       import tinynet

       torch.manual_seed(0)
       net = tinynet.TinyNet()
       print("imported from", tinynet.__name__)
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        """The layers in order.

        A problem of Sphinx's own, to compare locations with: :notarole:`x`.
        """
        return self.drop(self.fc(x))

    def broken(self) -> None:
        """An example that fails in its third line.

        .. evaldemo::

           import tinynet
           net = tinynet.TinyNet()
           raise ValueError("broken on purpose")
        """

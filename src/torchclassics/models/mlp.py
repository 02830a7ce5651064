"""The small fully connected nets of the first lessons."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    """The tutorial series' class-based net: one hidden layer with ReLU, e.g. 1 -> 10 -> 1."""

    def __init__(self, n_feature: int, n_hidden: int, n_output: int):
        super().__init__()
        self.hidden = nn.Linear(n_feature, n_hidden)
        self.predict = nn.Linear(n_hidden, n_output)

    def forward(self, x):
        return self.predict(F.relu(self.hidden(x)))


def sequential_net(n_feature: int, n_hidden: int, n_output: int) -> nn.Sequential:
    """The same function as :class:`Net`, built the quick way."""
    return nn.Sequential(nn.Linear(n_feature, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_output))

"""The CNN of the MNIST lesson, exactly as the tutorial series builds it."""
from __future__ import annotations

import torch
from torch import nn


class CNN(nn.Module):
    """(1, 28, 28) -> Conv 5x5 (16) -> ReLU -> MaxPool 2 -> Conv 5x5 (32) -> ReLU -> MaxPool 2 -> Linear(1568, 10).

    ``features`` is the flattened 32 x 7 x 7 = 1568-d map before the last layer: what the
    t-SNE figure embeds. Layer names follow the tutorial (conv1, conv2, out)."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels=1, out_channels=16, kernel_size=5, stride=1, padding=2),  # (16, 28, 28)
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),                                                  # (16, 14, 14)
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(16, 32, 5, 1, 2),  # (32, 14, 14)
            nn.ReLU(),
            nn.MaxPool2d(2),             # (32, 7, 7)
        )
        self.out = nn.Linear(32 * 7 * 7, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))

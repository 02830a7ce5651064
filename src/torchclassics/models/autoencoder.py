"""The MNIST autoencoder: 784 pixels squeezed through 3 numbers and back."""
from __future__ import annotations

import torch
from torch import nn


class AutoEncoder(nn.Module):
    """Encoder 784 -> 128 -> 64 -> 12 -> 3 (Tanh between), mirrored decoder ending in a Sigmoid.

    ``forward`` returns the reconstruction (what the loss compares with the input);
    ``encode`` gives the 3-d code the scatter plot shows. The tutorial's forward returned both;
    the engine wants one output tensor, so the code has its own method."""

    def __init__(self, pixels: int = 28 * 28, code: int = 3):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(pixels, 128), nn.Tanh(),
            nn.Linear(128, 64), nn.Tanh(),
            nn.Linear(64, 12), nn.Tanh(),
            nn.Linear(12, code),  # 3 features: a point in 3-D
        )
        self.decoder = nn.Sequential(
            nn.Linear(code, 12), nn.Tanh(),
            nn.Linear(12, 64), nn.Tanh(),
            nn.Linear(64, 128), nn.Tanh(),
            nn.Linear(128, pixels),
            nn.Sigmoid(),  # pixels in (0, 1)
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

"""Generators and discriminators of the two GAN experiments.

Each discriminator ends in a logit, not a probability: D(x) = sigmoid(logit), and the GAN
losses take the logit (``-log D(x) = softplus(-logit)``), the same function without log(0)
when the discriminator becomes sure of itself.
"""
from __future__ import annotations

from torch import nn


def painter(ideas: int = 5, hidden: int = 128, points: int = 15) -> nn.Sequential:
    """The tutorial series' generator: ``ideas`` random numbers -> a painting of ``points`` y values."""
    return nn.Sequential(nn.Linear(ideas, hidden), nn.ReLU(), nn.Linear(hidden, points))


def critic(points: int = 15, hidden: int = 128) -> nn.Sequential:
    """The tutorial series' discriminator, its closing Sigmoid moved into the loss: a painting ->
    the logit of "the famous artist painted this"."""
    return nn.Sequential(nn.Linear(points, hidden), nn.ReLU(), nn.Linear(hidden, 1))


class DCGenerator(nn.Module):
    """DCGAN's generator for 28x28 digits: noise (B, noise_dim) -> images (B, 1, 28, 28) in [-1, 1].

    Transposed convolutions grow 1x1 -> 7x7 -> 14x14 -> 28x28; batch norm and ReLU after every
    layer but the last, Tanh at the output (the DCGAN paper's choices)."""

    def __init__(self, noise_dim: int = 100, width: int = 32):
        super().__init__()
        self.noise_dim = noise_dim
        self.net = nn.Sequential(
            nn.Unflatten(1, (noise_dim, 1, 1)),
            nn.ConvTranspose2d(noise_dim, 2 * width, 7, 1, 0, bias=False),  # (2w, 7, 7)
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),      # (w, 14, 14)
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1),                          # (1, 28, 28)
            nn.Tanh(),
        )

    def forward(self, noise):
        return self.net(noise)


class DCDiscriminator(nn.Module):
    """DCGAN's discriminator for 28x28 digits: images (B, 1, 28, 28) -> logits (B, 1).

    Strided convolutions instead of pooling (28 -> 14 -> 7 -> 1), LeakyReLU(0.2), batch norm
    on every layer but the input layer and the output (the DCGAN paper's choices)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1),                       # (w, 14, 14)
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),   # (2w, 7, 7)
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 7, 1, 0),                   # (1, 1, 1)
            nn.Flatten(),
        )

    def forward(self, images):
        return self.net(images)


def dcgan_init(module: nn.Module) -> nn.Module:
    """The DCGAN paper's initialisation: weights N(0, 0.02); batch norm scales N(1, 0.02), shifts 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
    return module

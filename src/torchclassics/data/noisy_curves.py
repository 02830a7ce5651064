"""The data of the tutorial series' dropout and batch-normalization lessons, from a seed.

Training and held-out points come from the same curve and the same noise; only the noise
draws differ, so a gap between training and held-out loss is the net's doing."""
from __future__ import annotations

import torch


def noisy_line(n: int, n_test: int, noise: float, seed: int):
    """The dropout lesson's data: ``y = x + noise * N(0, 1)`` at n evenly spaced x in [-1, 1] for
    training, and at n_test evenly spaced x, with fresh noise, held out (n_test = n: at the
    training x, as the lesson)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(-1, 1, n).unsqueeze(1)
    y = x + noise * torch.randn(x.shape, generator=g)
    x_test = torch.linspace(-1, 1, n_test).unsqueeze(1)
    return x, y, x_test, x_test + noise * torch.randn(x_test.shape, generator=g)


def shifted_parabola(n: int, n_test: int, low: float, high: float, noise: float, seed: int):
    """The batch-normalization lesson's data: ``y = x^2 - 5 + noise * N(0, 1)`` at evenly spaced x
    in [low, high] (the lesson's [-7, 10]: inputs far from zero, outputs up to 95)."""
    g = torch.Generator().manual_seed(seed)

    def draw(count):
        x = torch.linspace(low, high, count).unsqueeze(1)
        return x, x.pow(2) - 5 + noise * torch.randn(x.shape, generator=g)

    return (*draw(n), *draw(n_test))

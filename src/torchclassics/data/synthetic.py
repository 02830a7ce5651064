"""Synthetic data of the first lessons, generated from a seed (no download, ever)."""
from __future__ import annotations

import numpy as np
import torch

# The book's toy line ("Deep Learning with PyTorch", chapter 3): 17 (x, y) points fitted by hand and with nn.Linear.
TOY_X = [3.3, 4.4, 5.5, 6.71, 6.93, 4.168, 9.779, 6.182, 7.59, 2.167, 7.042, 10.791, 5.313, 7.997, 5.654, 9.27, 3.1]
TOY_Y = [1.7, 2.76, 2.09, 3.19, 1.694, 1.573, 3.366, 2.596, 2.53, 1.221, 2.827, 3.465, 1.65, 2.904, 2.42, 2.94, 1.3]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def parabola(n: int, seed: int, noise: float = 0.2, uniform_noise: bool = True):
    """x in [-1, 1] (evenly spaced), y = x^2 + noise: U(0, noise) as in the regression
    lesson, or noise * N(0, 1) as in the optimizer lesson."""
    g = _generator(seed)
    x = torch.linspace(-1, 1, n).unsqueeze(1)
    eps = torch.rand(x.shape, generator=g) if uniform_noise else torch.randn(x.shape, generator=g)
    return x, x.pow(2) + noise * eps


def two_clusters(n_per_class: int, seed: int, centre: float = 2.0):
    """Class 0 ~ N(+centre, 1), class 1 ~ N(-centre, 1), in 2-D."""
    g = _generator(seed)
    base = torch.ones(n_per_class, 2)
    x0 = torch.normal(centre * base, 1.0, generator=g)
    x1 = torch.normal(-centre * base, 1.0, generator=g)
    x = torch.cat([x0, x1]).float()
    y = torch.cat([torch.zeros(n_per_class), torch.ones(n_per_class)]).long()
    return x, y


def toy_line():
    return torch.tensor(TOY_X).unsqueeze(1), torch.tensor(TOY_Y).unsqueeze(1)


def sin_cos_windows(n_windows: int, time_steps: int, start_window: int = 0):
    """Consecutive windows of pi along the time axis: input sin(t), target cos(t).

    Shape (n_windows, time_steps, 1) each; window k covers [k*pi, (k+1)*pi], as the
    tutorial's loop does one step at a time."""
    rows = []
    for k in range(start_window, start_window + n_windows):
        rows.append(np.linspace(k * np.pi, (k + 1) * np.pi, time_steps, dtype=np.float32))
    t = torch.from_numpy(np.stack(rows)).unsqueeze(-1)
    return torch.sin(t), torch.cos(t), t

"""The famous artist of the tutorial series' GAN lesson, and how far a painting is from their style.

A painting is a curve drawn at ``points`` evenly spaced x in [-1, 1]: ``a * x**2 + (a - 1)``
with ``a ~ U(1, 2)``. Every painting lies between the lower bound (a = 1: ``x**2``) and the
upper bound (a = 2: ``2 * x**2 + 1``).
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

from .gan import generator_for

LOWEST_A, HIGHEST_A = 1.0, 2.0


def canvas(points: int) -> torch.Tensor:
    """The x of every point of a painting."""
    return torch.linspace(-1, 1, points)


def paint(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """One painting per ``a``: (n,) -> (n, points)."""
    return a[:, None] * x.pow(2) + (a[:, None] - 1)


def artist_works(n: int, x: torch.Tensor, draws: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` real paintings and their ``a``."""
    a = LOWEST_A + (HIGHEST_A - LOWEST_A) * torch.rand(n, generator=draws)
    return paint(a, x), a


def nearest_in_family(paintings: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each painting, the ``a`` in [1, 2] whose curve is nearest (least squares) and the
    root-mean-square distance to that curve, in the units of the painting's y.

    ``a * x**2 + (a - 1) = a * (x**2 + 1) - 1``: the best ``a`` is a projection onto ``x**2 + 1``.
    The squared distance is a parabola in ``a``, so its minimum over [1, 2] is the free
    minimum clamped into [1, 2]."""
    basis = x.pow(2) + 1
    a = ((paintings + 1) @ basis / basis.dot(basis)).clamp(LOWEST_A, HIGHEST_A)
    distance = (paintings - paint(a, x)).pow(2).mean(dim=1).sqrt()
    return a, distance


class ArtistWorks:
    """``steps`` batches of ``(paintings, a)`` per epoch, drawn from a generator seeded by
    (seed, epoch) alone: a resumed run sees exactly the paintings the uninterrupted one saw."""

    def __init__(self, steps: int, batch_size: int, points: int, seed: int, device=None):
        self.steps, self.batch_size, self.seed, self.device = steps, batch_size, seed, device
        self.x = canvas(points)
        self.rank = 0

    def __len__(self) -> int:
        return self.steps

    @property
    def n_samples(self) -> int:
        return self.steps * self.batch_size

    def shard(self, rank: int, world: int) -> ArtistWorks:
        """Under DDP every process paints batches of its own."""
        self.rank = rank
        return self

    def epoch(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        draws = generator_for("paintings", self.seed, epoch, self.rank)
        for _ in range(self.steps):
            paintings, a = artist_works(self.batch_size, self.x, draws)
            yield paintings.to(self.device), a.to(self.device)

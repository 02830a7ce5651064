"""Batches for a GAN: each batch of real data comes with the noise the generator turns into fakes.

The noise of an epoch is drawn from a generator seeded by (seed, epoch) alone, like the
shuffling of :class:`~torchclassics.data.batches.TensorBatches`: a resumed run replays exactly
the noise the uninterrupted run drew, and the noise is the same on a CPU and a GPU.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch


def generator_for(*key) -> torch.Generator:
    """A CPU generator seeded by ``key`` (ints and strings) alone.

    The same key gives the same numbers in every process and after every resume; different
    keys (``("noise", seed, epoch)``, ``("held-out", seed)``) give unrelated streams. A hash
    rather than arithmetic on the numbers, so no two keys can meet by coincidence."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


class WithNoise:
    """``(noise, real)`` batches: the generator's input and the data its output should resemble.

    ``real`` is any batches object (``.epoch(n)`` yielding tuples whose first item is the data);
    ``noise_size`` is one sample's noise shape, drawn from N(0, 1)."""

    def __init__(self, real, noise_size: tuple[int, ...], seed: int):
        self.real, self.noise_size, self.seed = real, tuple(noise_size), seed
        self.rank = 0

    def __len__(self) -> int:
        return len(self.real)

    @property
    def n_samples(self) -> int:
        return self.real.n_samples

    def shard(self, rank: int, world: int) -> WithNoise:
        """Under DDP each process takes its share of the real data and draws noise of its own."""
        self.real.shard(rank, world)
        self.rank = rank
        return self

    def epoch(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        draws = generator_for("noise", self.seed, epoch, self.rank)
        for batch in self.real.epoch(epoch):
            real = batch[0]
            noise = torch.randn(len(real), *self.noise_size, generator=draws)
            yield noise.to(real.device), real  # drawn on the CPU: the same numbers on any device

"""In-memory datasets batched by index: the fast path for data that fits in memory.

Instead of a DataLoader pushing samples one by one through Python, the whole data
set is one tensor (on the training device), an epoch is a seeded permutation of
row indices, and a batch is one indexing operation plus an optional per-batch
``transform`` (e.g. uint8 pixels -> normalised floats).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from ..core.errors import UserError


def per_process_batch(batch_size: int, world: int) -> int:
    if batch_size % world:
        raise UserError(f"batch_size={batch_size} cannot be shared evenly by {world} processes: give a multiple "
                        f"of {world} (batch_size is the global batch, split over the processes).")
    return batch_size // world


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffling generator of one epoch: a function of (seed, epoch) alone, so a
    resumed run draws exactly the batches the uninterrupted run would have."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class TensorBatches:
    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, transform: Callable | None = None, device=None):
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError("all tensors must have the same first dimension")
        self.tensors = tuple(t.to(device) if device is not None else t for t in tensors)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.transform = transform
        self.rank, self.world = 0, 1

    @property
    def n_samples(self) -> int:
        return len(self.tensors[0])

    def shard(self, rank: int, world: int) -> TensorBatches:
        """Under DDP each process takes every ``world``-th sample of the same permutation, in batches
        of ``batch_size / world``: the k-th batches of all processes together are the k-th batch of
        one process, so N processes train as one does (``batch_size`` is the global batch)."""
        self.batch_size = per_process_batch(self.batch_size, world)
        self.rank, self.world = rank, world
        return self

    def _order(self, epoch: int) -> torch.Tensor:
        n = self.n_samples
        order = torch.randperm(n, generator=epoch_generator(self.seed, epoch)) if self.shuffle else torch.arange(n)
        if self.world > 1:
            order = order[: n - n % self.world][self.rank :: self.world]
        return order.to(self.tensors[0].device)

    def __len__(self) -> int:
        n = self.n_samples // self.world
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self, epoch: int = 0) -> Iterator[tuple]:
        order = self._order(epoch)
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            index = order[start : start + self.batch_size]
            batch = tuple(t[index] for t in self.tensors)
            yield self.transform(*batch) if self.transform else batch

"""TensorDataset + DataLoader: mini-batches, shuffling, worker processes, the last batch.

The seed's ``TensorDataset(data_tensor=x, target_tensor=y)`` keywords are gone:
``TensorDataset(x, y)`` takes the tensors in order. The seed shuffled with one
``torch.randperm`` per epoch from the global RNG after ``torch.manual_seed(1)``;
a sampler doing the same from its own ``torch.Generator`` prints the seed's
batches digit for digit, on every run, with or without workers. (Today's
``RandomSampler`` draws a second permutation per epoch, so with it only the
first epoch would match.)

Worker processes: on Linux they are forked; on macOS and Windows they are
*spawned*, i.e. a fresh interpreter imports this module and receives the dataset
pickled. That is why the dataset lives at module level and nothing here is a
lambda or a local function.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

# The seed's data: x = 1..10, y = 10..1, so each y tells which x it came with (x + y = 11).
X = torch.linspace(1, 10, 10)
Y = torch.linspace(10, 1, 10)
DATASET = TensorDataset(X, Y)


class Permutation(Sampler[int]):
    """Shuffles by one ``torch.randperm`` per epoch from its own seeded generator:
    the order depends on the seed alone, not on workers or other random draws."""

    def __init__(self, n: int, seed: int):
        self.n = n
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


def make_loader(batch_size: int = 5, workers: int = 2, seed: int = 1, drop_last: bool = False,
                context: str | None = None) -> DataLoader:
    """Shuffled batches of DATASET, in an order fixed by ``seed`` whatever ``workers`` is.
    ``context`` chooses how workers start ("fork", "spawn"; None: the platform's)."""
    # The sampler has its own generator, so the order of every epoch depends on the
    # seed alone. The loader's generator seeds the workers (random augmentation);
    # sharing one stream would make the order depend on the number of workers.
    order = Permutation(len(DATASET), seed)
    return DataLoader(
        DATASET, batch_size=batch_size, sampler=order, drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed),
        num_workers=workers, multiprocessing_context=context if workers else None,
        # Workers start once for all epochs instead of once per epoch.
        persistent_workers=workers > 0,
    )


def epoch_batches(loader: DataLoader, epochs: int = 3) -> list[tuple[int, int, list[float], list[float]]]:
    """(epoch, step, batch x, batch y) for every batch of ``epochs`` passes."""
    rows = []
    for epoch in range(epochs):
        for step, (batch_x, batch_y) in enumerate(loader):
            rows.append((epoch, step, batch_x.tolist(), batch_y.tolist()))
    return rows


def format_row(row: tuple[int, int, list[float], list[float]]) -> str:
    epoch, step, xs, ys = row
    return (f"Epoch: {epoch} | Step: {step} | batch x: {[int(v) for v in xs]}"
            f" | batch y: {[int(v) for v in ys]}")


def run(out: Path) -> None:
    print("DataLoader(TensorDataset(x, y), batch_size=5, num_workers=2, sampler=Permutation(10, seed=1)):")
    for row in epoch_batches(make_loader()):
        print("  " + format_row(row))
    print("each epoch is a new permutation of all 10 samples; pairs stay together (x + y = 11 in every batch);"
          " seed 1 gives this printout on every run, with or without workers: the seed's own printout.")
    print("\n10 samples in batches of 4: the last batch is partial (2 samples):")
    for row in epoch_batches(make_loader(batch_size=4, workers=0), epochs=1):
        print("  " + format_row(row))
    print("with drop_last=True the partial batch is dropped (every batch the same size, 2 samples unseen "
          "this epoch):")
    for row in epoch_batches(make_loader(batch_size=4, workers=0, drop_last=True), epochs=1):
        print("  " + format_row(row))
    return None

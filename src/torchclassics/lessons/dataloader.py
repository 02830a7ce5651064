"""TensorDataset + DataLoader: mini-batches, shuffling, worker processes, the last batch.

The tutorial series' ``TensorDataset(data_tensor=x, target_tensor=y)`` keywords are
gone: ``TensorDataset(x, y)`` takes the tensors in order. The tutorial shuffled with
one ``torch.randperm`` per epoch from the global RNG after ``torch.manual_seed(1)``;
a sampler doing the same from its own ``torch.Generator`` prints the tutorial's
batches digit for digit, on every run, with or without workers.

``shuffle=True, generator=torch.Generator().manual_seed(1)`` repeats too, but gives
another order: each epoch the loader draws a seed for its workers from that
generator before the sampler draws its permutation (with 0 workers as well, so the
number of workers changes nothing). Its first epoch is the printout of the
course-project notes, not the tutorial's; with ``persistent_workers=True`` the
workers' seed is drawn once instead of once per epoch, so later epochs differ.

Worker processes: on Linux they are forked; on macOS and Windows they are
*spawned*, i.e. a fresh interpreter imports this module and receives the dataset
pickled. That is why the dataset lives at module level and nothing here is a
lambda or a local function.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

# The tutorial's data: x = 1..10, y = 10..1, so each y tells which x it came with (x + y = 11).
X = torch.linspace(1, 10, 10)
Y = torch.linspace(10, 1, 10)
DATASET = TensorDataset(X, Y)


class Permutation(Sampler[int]):
    """Shuffles by one ``torch.randperm`` per epoch from its own seeded generator:
    the order depends on the random seed alone, not on workers or other random draws."""

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
    # sharing one stream would make the order depend on persistent_workers.
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


def generator_shuffle_order(workers: int, persistent: bool = False, seed: int = 1, epochs: int = 3) -> list[list[int]]:
    """The batches of x that ``shuffle=True, generator=<seeded>`` gives, ``epochs`` passes."""
    loader = DataLoader(DATASET, batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(seed),
                        num_workers=workers, persistent_workers=persistent)
    return [[int(v) for v in batch_x] for _ in range(epochs) for batch_x, _ in loader]


def format_row(row: tuple[int, int, list[float], list[float]]) -> str:
    epoch, step, xs, ys = row
    return (f"Epoch: {epoch} | Step: {step} | batch x: {[int(v) for v in xs]}"
            f" | batch y: {[int(v) for v in ys]}")


def run(out: Path) -> None:
    print("DataLoader(TensorDataset(x, y), batch_size=5, num_workers=2, sampler=Permutation(10, seed=1)):")
    for row in epoch_batches(make_loader()):
        print("  " + format_row(row))
    print("each epoch is a new permutation of all 10 samples; pairs stay together (x + y = 11 in every batch);"
          " seed 1 gives this printout on every run, with or without workers: the tutorial series' printout.")
    print("\nshuffle=True, generator=torch.Generator().manual_seed(1) instead, batches of x over 3 epochs:")
    orders = {"0 workers": generator_shuffle_order(0), "2 workers": generator_shuffle_order(2),
              "2 persistent workers": generator_shuffle_order(2, persistent=True)}
    for name, order in orders.items():
        print(f"  {name:<21} {order}")
    print(f"  the number of workers changes nothing: {orders['0 workers'] == orders['2 workers']}; "
          "persistent_workers changes the later epochs: "
          f"{orders['2 workers'][2:] != orders['2 persistent workers'][2:]}")
    print("  (the loader draws a seed for its workers from the generator each time an epoch starts, with 0 workers "
          "too; persistent workers draw it once.) Epoch 0, [5, 7, 10, 3, 4] [2, 1, 8, 9, 6], is the course-project "
          "notes' printout.")
    print("\n10 samples in batches of 4: the last batch is partial (2 samples):")
    for row in epoch_batches(make_loader(batch_size=4, workers=0), epochs=1):
        print("  " + format_row(row))
    print("with drop_last=True the partial batch is dropped (every batch the same size, 2 samples unseen "
          "this epoch):")
    for row in epoch_batches(make_loader(batch_size=4, workers=0, drop_last=True), epochs=1):
        print("  " + format_row(row))
    return None

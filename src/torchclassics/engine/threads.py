"""How many CPU threads a run trains with: a function of the machine and the parameters, never of how
busy the machine is, because a convolution's sums (and so a run's numbers) depend on the count.

``threads`` in params.json wins; else the Task's own choice (``cpu_threads``: a count, or every
core); else one thread for tiny models (their ops take microseconds: spreading each over threads
costs more than it gains; 100 steps of the 2-10-2 net took 0.11 s with one thread vs 4.6 s with two
on a loaded 2-core machine) and every core this process may use for the others. The count is
written into the run's params.json, so a resumed run and a rerun use it whatever the machine.

What may follow the load is what changes no number: how OpenMP's idle threads wait, chosen before
torch is imported (core/waiting.py): they spin on a quiet machine and sleep beside a busy process.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import nn

SMALL_MODEL_PARAMETERS = 100_000
ALL_CORES = "all"
_TORCH_DEFAULT = torch.get_num_threads()  # torch's own choice at start: physical cores, or $OMP_NUM_THREADS


def machine_threads() -> int:
    """The cores this process may use (its CPU affinity), at most torch's default thread count."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, _TORCH_DEFAULT))


def is_small(model: nn.Module) -> bool:
    return sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS


def planned(asked: int | None, model: nn.Module, task_choice: int | str | None) -> int:
    """The run's thread count: ``asked`` (params' ``threads``), else the task's choice, else by model size."""
    if asked:
        return int(asked)
    if task_choice == ALL_CORES:
        return machine_threads()
    if task_choice:
        return int(task_choice)
    return 1 if is_small(model) else machine_threads()


@contextlib.contextmanager
def using(count: int) -> Iterator[None]:
    """torch's CPU threads set to ``count`` inside the block; the previous count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)

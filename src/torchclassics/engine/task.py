"""What a lesson hands the engine (a :class:`Task`) and what training gives back (a :class:`Fit`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..rundir.metrics import Objective, held_out
from .state import TrainingState

Forward = Callable[[nn.Module, Any, Any], tuple[Any, Any]]


def plain_forward(model: nn.Module, inputs, state):
    return model(inputs), state


def accuracy_sum(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Number of right answers in a batch (metrics are sums; the loop divides by samples)."""
    return (outputs.argmax(dim=1) == targets).sum()


@dataclass
class Task:
    """What one lesson hands the engine. Anything a later step (results, figures, predictions) needs
    goes in here: in ``context`` (in memory, rebuilt by ``build``) or in ``record`` (checkpointed)."""

    model: nn.Module               # what evaluate, predict and export use (a GAN: its generator)
    train: Any                     # .epoch(n) yields (inputs, targets); len() = batches; .n_samples
    test: Any | None               # same interface, or None
    loss_fn: Callable | None = None  # (outputs, targets) -> mean loss over the batch (the lesson step's)
    metrics: dict[str, Callable] = field(default_factory=dict)  # name -> (outputs, targets) -> sum over batch
    forward: Forward = plain_forward
    carry_state: bool = False      # pass the hidden state from batch to batch within an epoch
    step: Callable | None = None   # an experiment's own step(trainer, inputs, targets) -> (losses, outputs)
    evaluate: Callable | None = None  # an experiment's own held-out metrics: (trainer) -> {"test_...": value}
    models: dict[str, nn.Module] | None = None  # several models: name -> module (``model`` among them)
    optimized: tuple[str, ...] | None = None    # the models that get an optimizer (default: all)
    on_epoch_end: Callable[[int, nn.Module, dict], None] | None = None  # (epoch, model, record)
    on_step_end: Callable[[int, nn.Module, dict], None] | None = None   # (step, model, record); keep it cheap
    record: dict = field(default_factory=dict)  # what the hooks keep (GIF frames); saved in checkpoints
    context: dict = field(default_factory=dict)  # what results and figures draw from (the data), not saved
    cpu_threads: int | str | None = None  # CPU threads: a count, threads.ALL_CORES, or None (by model size)
    loss_name: str = "loss"        # the training loss's name in rows and summary ("mse" for MSE lessons)
    held_out: str = "test"         # prefix of held-out metrics: "test", or "val" for a validation split

    def __post_init__(self):
        if self.models is None:
            self.models = {"model": self.model}
        if self.optimized is None:
            self.optimized = tuple(self.models)

    @property
    def main_name(self) -> str:
        return next(name for name, m in self.models.items() if m is self.model)

    def default_objective(self) -> Objective:
        """The held-out loss (the training loss without a held-out split), lower is better."""
        return Objective(held_out(self.held_out, self.loss_name) if self.test is not None else self.loss_name, "min")


@dataclass
class Fit:
    """What training one Task left: its rows, its best epoch, its per-step losses, what its hooks recorded."""

    history: list[dict]
    best: dict
    train_s: float
    steps: int
    step_losses: list[float]
    record: dict = field(default_factory=dict)
    resumed_from: int = 0

    @classmethod
    def from_state(cls, state: TrainingState) -> Fit:
        return cls(list(state.history), dict(state.best), float(state.train_s), int(state.step),
                   list(state.step_losses), state.record)

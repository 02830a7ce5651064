"""The training loop: the subject of the lessons, in plain PyTorch.

    for epoch in epochs:
        for inputs, targets in batches:
            optimizer.zero_grad(); loss = loss_fn(model(inputs), targets); loss.backward(); optimizer.step()
        evaluate on the held-out split; log; checkpoint

What differs between lessons comes in through a :class:`Task` (the model, the
data, the loss, per-batch metrics, an optional ``forward`` that carries an RNN's
hidden state, ``on_epoch_end`` / ``on_step_end`` hooks that record frames for a GIF),
never through a copy of this loop.
"""
from __future__ import annotations

import inspect
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint
from ..config import check_optimizer
from ..errors import UserError
from .rundir import RunDir
from .tensorboard import Curves

Forward = Callable[[nn.Module, Any, Any], tuple[Any, Any]]


class Diverged(UserError):
    """The loss became inf or NaN: the run stops with a hint instead of training on garbage."""


def plain_forward(model: nn.Module, inputs, state):
    return model(inputs), state


def detach_state(state):
    """Truncated back-propagation through time: keep the hidden state's value, cut its graph."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


def accuracy_sum(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Number of right answers in a batch (metrics are sums; the loop divides by samples)."""
    return (outputs.argmax(dim=1) == targets).sum()


@dataclass
class Task:
    """What one lesson hands the engine."""

    model: nn.Module
    train: Any                     # .epoch(n) yields (inputs, targets); len() = batches; .n_samples
    test: Any | None               # same interface, or None
    loss_fn: Callable              # (outputs, targets) -> mean loss over the batch
    metrics: dict[str, Callable] = field(default_factory=dict)  # name -> (outputs, targets) -> sum over batch
    forward: Forward = plain_forward
    carry_state: bool = False      # pass the hidden state from batch to batch within an epoch
    on_epoch_end: Callable[[int, nn.Module, dict], None] | None = None  # (epoch, model, record)
    on_step_end: Callable[[int, nn.Module, dict], None] | None = None   # (step, model, record); keep it cheap
    record: dict = field(default_factory=dict)  # what the hooks keep (GIF frames); saved in checkpoints
    cpu_threads: int | None = None  # CPU threads while training; None: one for tiny models, else all
    monitor: str = "test_loss"     # the metric that picks best.pt
    mode: str = "min"              # "min" or "max"


@dataclass
class FitResult:
    history: list[dict]
    best: dict
    train_s: float
    steps: int
    step_losses: list[float]
    resumed_from: int = 0


def build_optimizer(params: dict, model: nn.Module, device: torch.device | None = None) -> torch.optim.Optimizer:
    """``torch.optim.<optimizer>(model.parameters(), lr=lr, **optimizer_args)``."""
    name = params.get("optimizer", "SGD")
    check_optimizer("optimizer", name)
    cls = getattr(torch.optim, name)
    kwargs = dict(params.get("optimizer_args") or {})
    for key, value in kwargs.items():
        if isinstance(value, list):  # JSON has no tuples: betas=[0.9, 0.99]
            kwargs[key] = tuple(value)
    if device is not None and device.type == "cuda" and not {"fused", "foreach"} & kwargs.keys() \
            and "fused" in inspect.signature(cls).parameters:
        kwargs["fused"] = True  # one kernel per step for all parameters (cnn_mnist on an H100: 4.0x -> 5.6x the tutorial)
    try:
        return cls(model.parameters(), lr=params["lr"], **kwargs)
    except (TypeError, ValueError) as err:
        raise UserError(f"optimizer {name} with lr={params['lr']} and optimizer_args={kwargs}: {err}.") from None


def build_scheduler(params: dict, optimizer) -> Any:
    """``scheduler: {"name": "StepLR", "step_size": 10, "gamma": 0.5}`` or null; stepped once per epoch."""
    spec = params.get("scheduler")
    if not spec:
        return None
    spec = dict(spec)
    name = spec.pop("name", None)
    cls = getattr(torch.optim.lr_scheduler, str(name), None)
    if not isinstance(cls, type):
        raise UserError(f"scheduler name '{name}': not in torch.optim.lr_scheduler (e.g. StepLR, CosineAnnealingLR).")
    try:
        return cls(optimizer, **spec)
    except (TypeError, ValueError) as err:
        raise UserError(f"scheduler {name} with {spec}: {err}.") from None


SMALL_MODEL_PARAMETERS = 100_000


@contextmanager
def threads_for(model: nn.Module, device: torch.device, wanted: int | None = None):
    """CPU threads while training: ``wanted`` when the task says, else one for tiny models.

    Tiny models' ops take microseconds, and spreading each over threads costs more than it
    gains (measured: 100 steps of the 2-10-2 net, 0.11 s with one thread vs 4.6 s with two
    on a loaded 2-core machine). Parameter count is only a proxy for the work per op, so a
    task whose ops are large (convolutions) or small (a 220k-parameter MLP on batches of 64)
    says so with ``Task.cpu_threads``. The previous count is restored afterwards."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
        torch.set_num_threads(wanted or (1 if small else before))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def evaluate_task(task: Task, model: nn.Module, device: torch.device) -> dict:
    """Loss and metrics averaged over every held-out sample, prefixed ``test_``."""
    if task.test is None:
        return {}
    model.eval()
    seen, state = 0, None
    totals = {k: torch.zeros((), device=device) for k in ("loss", *task.metrics)}
    for inputs, targets in task.test.epoch(0):
        outputs, state = task.forward(model, inputs, state)
        if not task.carry_state:
            state = None
        n = len(targets)
        seen += n
        totals["loss"] += task.loss_fn(outputs, targets) * n
        for name, metric in task.metrics.items():
            totals[name] += metric(outputs, targets)
    return {f"test_{k}": float(v) / max(seen, 1) for k, v in totals.items()}


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return best is None or (value < best if mode == "min" else value > best)


class Trainer:
    """Runs a Task for ``params['epochs']`` epochs, writing metrics and checkpoints into ``run``."""

    def __init__(self, task: Task, params: dict, run: RunDir, device: torch.device,
                 tag: str = "", quiet: bool = False, distributed=None, report: Callable | None = None):
        self.task, self.params, self.run, self.device = task, params, run, device
        self.tag, self.quiet, self.report = tag, quiet, report
        self.model = task.model.to(device)
        self.distributed = distributed
        self.train_model = distributed.wrap(self.model) if distributed else self.model
        self.optimizer = build_optimizer(params, self.model, device=device)
        self.scheduler = build_scheduler(params, self.optimizer)
        self.clip = params.get("clip_grad_norm")
        self.ckpt_dir = run.checkpoints / tag if tag else run.checkpoints
        self.history: list[dict] = []
        self.step_losses: list[float] = []
        self.best: dict = {"metric": task.monitor, "value": None, "epoch": None}
        self.epoch, self.step = 0, 0
        self.train_s = 0.0
        self.pending_best: dict | None = None
        self.last_save = time.monotonic()
        self.checkpoint_seconds = float(os.environ.get("TORCHCLASSICS_CHECKPOINT_SECONDS", 2.0))

    # -- one step and one epoch -------------------------------------------------
    def train_epoch(self, epoch: int) -> dict:
        task, model, optimizer = self.task, self.train_model, self.optimizer
        model.train()
        sums = {"loss": torch.zeros((), device=self.device)}
        sums.update({k: torch.zeros((), device=self.device) for k in task.metrics})
        seen, state, losses = 0, None, []
        for inputs, targets in task.train.epoch(epoch):
            kept = {}

            def closure():  # LBFGS calls it several times per step; the others once
                optimizer.zero_grad(set_to_none=True)
                outputs, new_state = task.forward(model, inputs, state)
                loss = task.loss_fn(outputs, targets)
                loss.backward()
                if self.clip:
                    nn.utils.clip_grad_norm_(model.parameters(), self.clip)
                kept.setdefault("outputs", outputs.detach())
                kept.setdefault("loss", loss.detach())
                kept.setdefault("state", new_state)
                return loss

            optimizer.step(closure)
            if task.carry_state:
                state = detach_state(kept["state"])
            n = len(targets)
            seen += n
            self.step += 1
            if task.on_step_end is not None:  # inside the timed loop: snapshots only, no plotting
                task.on_step_end(self.step, self.model, task.record)
            sums["loss"] += kept["loss"] * n
            for name, metric in task.metrics.items():
                sums[name] += metric(kept["outputs"], targets)
            losses.append(kept["loss"])
            self.bar.update(1)
        if losses:  # one device-to-host copy per epoch, not one per step
            self.step_losses.extend(torch.stack(losses).tolist())
        if self.distributed:
            sums = {name: self.distributed.sum(total) for name, total in sums.items()}
            seen = int(self.distributed.sum(torch.tensor(seen, device=self.device)))
        if not math.isfinite(float(sums["loss"])):
            raise Diverged(f"{self.tag + ': ' if self.tag else ''}training diverged at epoch {epoch} "
                           f"(loss is {float(sums['loss'])}); try a smaller lr (now {self.params.get('lr')}).")
        return {name: float(total) / max(seen, 1) for name, total in sums.items()}

    def evaluate(self) -> dict:
        return evaluate_task(self.task, self.model, self.device)

    # -- checkpoints ------------------------------------------------------------
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "rng": checkpoint.rng_state(),
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "history": self.history,
            "step_losses": self.step_losses,
            "record": self.task.record,
            "train_s": self.train_s,
        }

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        checkpoint.set_rng_state(state["rng"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.best, self.history = state["best"], state["history"]
        self.step_losses, self.train_s = list(state["step_losses"]), state["train_s"]
        self.task.record.clear()
        self.task.record.update(state["record"])

    def try_resume(self) -> int:
        last = self.ckpt_dir / "last.pt"
        if not last.exists():
            return 0
        # On the CPU first: RNG states must stay CPU tensors; weights and optimizer state are
        # copied to the model's device by load_state_dict.
        self.load_state(checkpoint.load(last, map_location="cpu"))
        self.run.truncate_metrics(self.epoch, self.tag)
        self.run.info(f"resumed {self.tag or 'training'} from {last} at epoch {self.epoch}", echo=True)
        return self.epoch

    def keep_best(self) -> None:
        """Hold the best weights in memory; they reach best.pt with the next checkpoint."""
        if not self.run.writer:
            return
        weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.pending_best = {"model": weights, "epoch": self.epoch, "best": dict(self.best)}

    def save(self, final: bool = False) -> None:
        """Write best.pt (if it changed) then last.pt, at most every ``checkpoint_seconds``.

        Tiny lessons run hundreds of epochs a second; writing every epoch would cost more
        than training. Resuming is exact from any epoch, so the interval loses only time."""
        due = time.monotonic() - self.last_save >= self.checkpoint_seconds
        if not self.run.writer or not (final or due):
            return
        if self.pending_best is not None:
            checkpoint.save_atomic(self.pending_best, self.ckpt_dir / "best.pt")
            self.pending_best = None
        checkpoint.save_atomic(self.state(), self.ckpt_dir / "last.pt")
        self.last_save = time.monotonic()

    # -- the whole fit ----------------------------------------------------------
    def fit(self, resume: bool = False) -> FitResult:
        epochs = int(self.params["epochs"])
        resumed_from = self.try_resume() if resume else 0
        total = (epochs - self.epoch) * len(self.task.train)
        self.bar = tqdm(total=total, desc=self.tag or self.run.path.name, disable=True if self.quiet else None,
                        leave=False, unit="step")
        self.curves = Curves(self.run.path, self.tag, self.epoch, enabled=self.run.writer)
        try:
            with threads_for(self.model, self.device, self.task.cpu_threads):
                while self.epoch < epochs:
                    self.run_epoch(self.epoch + 1, final=self.epoch + 1 == epochs)
        finally:
            self.bar.close()
            self.curves.close()
        return FitResult(self.history, self.best, self.train_s, self.step, self.step_losses, resumed_from)

    def run_epoch(self, epoch: int, final: bool) -> None:
        """Train one epoch, evaluate, log, checkpoint."""
        task = self.task
        start = time.perf_counter()
        train_metrics = self.train_epoch(epoch)
        plateau = isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if self.scheduler is not None and not plateau:
            self.scheduler.step()
        self.train_s += time.perf_counter() - start
        test_metrics = self.evaluate()
        if plateau:
            self.scheduler.step(test_metrics.get("test_loss", train_metrics["loss"]))
        if task.on_epoch_end is not None:
            task.on_epoch_end(epoch, self.model, task.record)
        row = {"epoch": epoch, "step": self.step, **train_metrics, **test_metrics,
               "lr": self.optimizer.param_groups[0]["lr"], "train_s": round(self.train_s, 4)}
        if self.tag:
            row["tag"] = self.tag
        self.history.append(row)
        self.epoch = epoch
        if _is_better(row.get(task.monitor), self.best["value"], task.mode):
            self.best = {"metric": task.monitor, "value": row[task.monitor], "epoch": epoch}
            self.keep_best()
        # The row first: a checkpoint never claims an epoch whose row is missing (a resume
        # drops rows logged after its checkpoint, never the other way round).
        self.run.append_metrics(row)
        self.save(final=final)
        self.curves.log(row)
        self.bar.set_postfix(loss=f"{train_metrics['loss']:.4g}")
        if self.report is not None:
            try:
                self.report(epoch, row)
            except BaseException:
                self.save(final=True)  # a pruned or interrupted run keeps its last finished epoch
                raise

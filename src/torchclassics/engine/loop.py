"""The training loop: the subject of the lessons, in plain PyTorch.

    for epoch in epochs:
        for inputs, targets in batches:
            step(inputs, targets)          # zero_grad, forward, loss, backward, step: see lesson_step
        evaluate on the held-out split; log; checkpoint

The step is the lesson's own, written out in :func:`lesson_step`. An optimizer that needs a
closure (LBFGS) goes through :func:`closure_step`; an experiment with its own step (a GAN's
discriminator-then-generator update) gives ``Task.step`` and keeps everything else the loop
gives: metrics.jsonl, checkpoints, exact resume, pruning, progress, mixed precision, DDP.

What differs between lessons comes in through a :class:`Task` (models, data, loss, per-batch
metrics, an optional ``forward`` that carries an RNN's hidden state, hooks that record GIF
frames), never through a copy of this loop.
"""
from __future__ import annotations

import copy
import inspect
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .. import progress
from ..errors import UserError
from . import checkpoint, graphs
from .device import keep_freed_memory
from .precision import Precision
from .rundir import RunDir, checkpoint_interval
from .tensorboard import Curves

Forward = Callable[[nn.Module, Any, Any], tuple[Any, Any]]
# Optimizers whose step() must be given a closure that re-evaluates the loss.
NEEDS_CLOSURE = ("LBFGS",)


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
    cpu_threads: int | None = None  # CPU threads while training; None: one for tiny models, else all
    loss_name: str = "loss"        # the training loss's name in rows and summary ("mse" for MSE lessons)
    held_out: str = "test"         # prefix of held-out metrics: "test", or "val" for a validation split
    monitor: str | None = None     # the metric that picks best.pt (default: the held-out loss)
    mode: str = "min"              # "min" or "max"

    def __post_init__(self):
        if self.models is None:
            self.models = {"model": self.model}
        if self.optimized is None:
            self.optimized = tuple(self.models)
        if self.monitor is None:
            self.monitor = f"{self.held_out}_{self.loss_name}" if self.test is not None else self.loss_name


@dataclass
class FitResult:
    history: list[dict]
    best: dict
    train_s: float
    steps: int
    step_losses: list[float]
    resumed_from: int = 0


# -- optimizers and schedulers ----------------------------------------------------------------------
# Devices where an optimizer that has a fused kernel (Adam, AdamW, SGD, Adagrad) uses it unless
# optimizer_args say otherwise: one kernel per step for all parameters instead of a dozen small
# ops per parameter. cnn_mnist: 4.0x -> 5.6x the tutorial on an H100; epoch 5-10% shorter on a
# 2-core CPU (measured).
FUSED_ON = ("cuda", "cpu")


def optimizer_kwargs(params: dict, cls, device: torch.device | None) -> dict:
    kwargs = dict(params.get("optimizer_args") or {})
    for key, value in kwargs.items():
        if isinstance(value, list):  # JSON has no tuples: betas=[0.9, 0.99]
            kwargs[key] = tuple(value)
    if device is not None and device.type in FUSED_ON and not {"fused", "foreach"} & kwargs.keys() \
            and "fused" in inspect.signature(cls).parameters:
        kwargs["fused"] = True
    return kwargs


def build_optimizer(params: dict, model: nn.Module, device: torch.device | None = None,
                    capturable: bool = False) -> torch.optim.Optimizer:
    """``torch.optim.<optimizer>(model.parameters(), lr=lr, **optimizer_args)``; ``capturable``: its
    state on the GPU, so a CUDA graph can replay its step."""
    name = params.get("optimizer", "SGD")
    cls = getattr(torch.optim, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise UserError(f"optimizer={name!r}: not a torch.optim optimizer.")
    kwargs = optimizer_kwargs(params, cls, device)
    if capturable:
        kwargs["capturable"] = True
    try:
        try:
            return cls(model.parameters(), lr=params["lr"], **kwargs)
        except RuntimeError:
            if "fused" in (params.get("optimizer_args") or {}) or not kwargs.pop("fused", False):
                raise
            return cls(model.parameters(), lr=params["lr"], **kwargs)  # a torch without this fused kernel
    except (TypeError, ValueError, RuntimeError) as err:
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
    except (TypeError, ValueError, KeyError, ZeroDivisionError) as err:
        raise UserError(f"scheduler {name} with {spec}: {err}.") from None


def check_training_setup(params: dict, model: nn.Module, device: torch.device) -> None:
    """Build the optimizer and scheduler on a copy of ``model`` and take one step of each, so
    arguments that only a step can judge (SparseAdam on dense gradients, StepLR with step_size 0,
    CosineAnnealingLR with T_max 0) fail here, before anything is written."""
    twin = copy.deepcopy(model).cpu()
    optimizer = build_optimizer(params, twin)
    scheduler = build_scheduler(params, optimizer)
    trained = [p for p in twin.parameters() if p.requires_grad]
    for p in trained:
        p.grad = torch.zeros_like(p)
    what = f"optimizer {params.get('optimizer')} with {params.get('optimizer_args') or {}}"
    try:
        if params.get("optimizer") in NEEDS_CLOSURE:
            optimizer.step(lambda: sum((p * 0).sum() for p in trained))
        else:
            optimizer.step()
    except (RuntimeError, ValueError, TypeError) as err:
        raise UserError(f"{what} cannot train this model: {' '.join(str(err).split())[:200]}.") from None
    if scheduler is not None:
        try:
            scheduler.step(0.0) if is_plateau(scheduler) else scheduler.step()
        except (RuntimeError, ValueError, TypeError, ZeroDivisionError, KeyError) as err:
            raise UserError(f"scheduler {params['scheduler']}: fails at its first step ({err}).") from None


def is_plateau(scheduler) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


# -- threads, evaluation --------------------------------------------------------------------------
SMALL_MODEL_PARAMETERS = 100_000
BUSY_WINDOW_S = 0.2  # long enough for 20 clock ticks per core at Linux's 100 Hz


def idle_cpus() -> int:
    """The cores this process may use that other work is not already keeping busy.

    OpenMP threads wait for each other at every operation: with another CPU-bound process on
    one of two cores, two threads train several times slower than one (cnn_mnist: 16.8 s vs
    4.5 s an epoch, measured)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    others = other_busy_cores()
    return max(1, min(cores, cores - round(others)))


def other_busy_cores(window_s: float = BUSY_WINDOW_S) -> float:
    """How many cores other processes keep busy now: the machine's busy CPU time over a short
    window (/proc/stat) less this process's own (/proc/self/stat), so a long-lived process
    (a notebook, a benchmark) never counts itself. Where there is no /proc (macOS, Windows):
    the 1-minute load average, or 0 without one either."""
    try:
        machine, own = _cpu_ticks()
        time.sleep(window_s)
        machine_after, own_after = _cpu_ticks()
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except (OSError, AttributeError):
            return 0.0
    ticks = os.sysconf("SC_CLK_TCK") * window_s
    return max(0.0, (machine_after - machine - (own_after - own)) / ticks)


def _cpu_ticks() -> tuple[int, int]:
    """(busy clock ticks of the whole machine, of this process) since boot."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    with open("/proc/self/stat") as f:
        after_name = f.read().rsplit(")", 1)[1].split()  # the name may hold spaces; fields 3.. follow it
    return user + nice + system + irq + softirq + steal, int(after_name[11]) + int(after_name[12])  # utime, stime


@contextmanager
def threads_for(model: nn.Module, device: torch.device, wanted: int | None = None):
    """CPU threads while training: ``wanted`` when the task says, else one for tiny models; never
    more than the cores that other work leaves idle (:func:`idle_cpus`).

    Tiny models' ops take microseconds, and spreading each over threads costs more than it
    gains (measured: 100 steps of the 2-10-2 net, 0.11 s with one thread vs 4.6 s with two
    on a loaded 2-core machine). Parameter count is only a proxy for the work per op, so a
    task whose ops are large (convolutions) or small (a 220k-parameter MLP on batches of 64)
    says so with ``Task.cpu_threads``. The previous count is restored afterwards."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
        threads = wanted or (1 if small else before)
        torch.set_num_threads(min(threads, idle_cpus()) if threads > 1 else 1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def evaluate_task(task: Task, model: nn.Module, device: torch.device) -> dict:
    """Held-out loss and metrics averaged over every sample, in float32, named
    ``<held_out>_<name>`` (``test_mse``, ``val_accuracy``)."""
    if task.test is None or task.loss_fn is None:
        return {}
    model.eval()
    seen, state = 0, None
    totals = {k: torch.zeros((), device=device) for k in (task.loss_name, *task.metrics)}
    for inputs, targets in task.test.epoch(0):
        outputs, state = task.forward(model, inputs, state)
        if not task.carry_state:
            state = None
        outputs = outputs.float()
        n = len(targets)
        seen += n
        totals[task.loss_name] += task.loss_fn(outputs, targets) * n
        for name, metric in task.metrics.items():
            totals[name] += metric(outputs, targets)
    return {f"{task.held_out}_{k}": float(v) / max(seen, 1) for k, v in totals.items()}


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return best is None or (value < best if mode == "min" else value > best)


# -- the steps ----------------------------------------------------------------------------------
def lesson_step(trainer: "Trainer", inputs, targets):
    """One optimizer update, as the lessons write it."""
    task, optimizer, amp = trainer.task, trainer.optimizer, trainer.precision
    optimizer.zero_grad(set_to_none=True)
    with amp.autocast():
        outputs, trainer.hidden = task.forward(trainer.train_model, inputs, trainer.hidden)
        loss = task.loss_fn(outputs, targets)
    amp.backward(loss)                      # loss.backward(), scaled under fp16
    trainer.clip()                          # clip_grad_norm, when the params ask for it
    amp.step(optimizer)                     # optimizer.step(), unscaled (or skipped) under fp16
    return {task.loss_name: loss}, outputs


def closure_step(trainer: "Trainer", inputs, targets):
    """The same update for an optimizer that evaluates the loss several times per step (LBFGS)."""
    task, optimizer, amp = trainer.task, trainer.optimizer, trainer.precision
    kept = {}

    def closure():
        optimizer.zero_grad(set_to_none=True)
        with amp.autocast():
            outputs, state = task.forward(trainer.train_model, inputs, trainer.hidden)
            loss = task.loss_fn(outputs, targets)
        loss.backward()
        trainer.clip()
        kept.setdefault("outputs", outputs)  # the first evaluation: before this step's update
        kept.setdefault("loss", loss)
        kept.setdefault("state", state)
        return loss

    optimizer.step(closure)
    trainer.hidden = kept["state"]
    return {task.loss_name: kept["loss"]}, kept["outputs"]


# -- the trainer ----------------------------------------------------------------------------------
class Trainer:
    """Runs a Task for ``params['epochs']`` epochs, writing metrics and checkpoints into ``run``."""

    def __init__(self, task: Task, params: dict, run: RunDir, device: torch.device,
                 tag: str = "", distributed=None, report: Callable | None = None):
        self.task, self.params, self.run, self.device = task, params, run, device
        self.tag, self.report, self.distributed = tag, report, distributed
        self.models = {name: module.to(device) for name, module in task.models.items()}
        self.model = task.model
        self.wrapped = {name: (distributed.wrap(m) if distributed and name in task.optimized else m)
                        for name, m in self.models.items()}
        self.train_model = self.wrapped[self.main_name]
        self.precision = Precision(params.get("precision", "fp32"), device)
        graphed = self.whole_step_graphs()
        self.optimizers = {name: build_optimizer(params, self.models[name], device, capturable=graphed)
                           for name in task.optimized}
        self.schedulers = {name: build_scheduler(params, opt) for name, opt in self.optimizers.items()}
        self.step_fn = graphs.GraphedLessonStep() if graphed else (task.step or self.default_step())
        self.clip_norm = params.get("clip_grad_norm")
        self.ckpt_dir = run.checkpoints / tag if tag else run.checkpoints
        self.history: list[dict] = []
        self.step_losses: list[float] = []
        self.best: dict = {"metric": task.monitor, "value": None, "epoch": None}
        self.epoch, self.step = 0, 0
        self.train_s = 0.0
        self.hidden = None
        self.pending_best: dict | None = None
        self.restored = False
        self.resumed_from = 0
        self.last_save = time.monotonic()
        self.checkpoint_seconds = checkpoint_interval()

    @property
    def main_name(self) -> str:
        return next(name for name, m in self.task.models.items() if m is self.task.model)

    @property
    def optimizer(self):
        """The main model's optimizer (the lesson step's)."""
        return self.optimizers[self.main_name]

    def whole_step_graphs(self) -> bool:
        """``cuda_graphs``: capture the whole step when it can be; say once why not otherwise."""
        if not graphs.wanted(self.params, self.device):
            return False
        reason = graphs.why_not(self)
        if reason is not None:
            progress.say(f"torchclassics: training without CUDA graphs: {reason}")
        return reason is None

    def default_step(self):
        if self.task.loss_fn is None:
            raise ValueError("a Task without loss_fn must give its own step")
        if self.params.get("optimizer") in NEEDS_CLOSURE:
            if self.precision.scaler is not None:
                raise UserError(f"precision=fp16 cannot train with {self.params['optimizer']}: its GradScaler "
                                "refuses closures. Use precision=bf16 or fp32.")
            return closure_step
        return lesson_step

    def clip(self, name: str | None = None) -> None:
        """Clip the gradients of model ``name`` (default: the main one) to ``clip_grad_norm``,
        in their true scale."""
        if self.clip_norm:
            name = name or self.main_name
            self.precision.unscale(self.optimizers[name])
            nn.utils.clip_grad_norm_(self.models[name].parameters(), self.clip_norm)

    # -- one epoch -----------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict:
        task = self.task
        for module in self.wrapped.values():
            module.train()
        sums: dict[str, torch.Tensor] = {}
        seen, losses, in_epoch, loss_names = 0, [], 0, []
        self.hidden = None
        for inputs, targets in task.train.epoch(epoch):
            named, outputs = self.step_fn(self, inputs, targets)
            loss_names = loss_names or list(named)
            self.precision.update()
            if task.carry_state:
                self.hidden = detach_state(self.hidden)
            else:
                self.hidden = None
            n = len(targets)
            seen += n
            self.step += 1
            in_epoch += 1
            if task.on_step_end is not None:  # inside the timed loop: snapshots only, no plotting
                task.on_step_end(self.step, self.model, task.record)
            for name, value in named.items():
                sums[name] = sums.get(name, 0) + value.detach().float() * n
            if outputs is not None:
                for name, metric in task.metrics.items():
                    sums[name] = sums.get(name, 0) + metric(outputs.detach(), targets)
            first = next(iter(named.values())).detach()
            losses.append(first)
            self.progress.step(epoch, in_epoch, lambda: float(first))
        if losses:  # one device-to-host copy per epoch, not one per step
            self.step_losses.extend(torch.stack(losses).float().tolist())
        if self.distributed:
            sums = {name: self.distributed.sum(torch.as_tensor(total, device=self.device)) for name, total in sums.items()}
            seen = int(self.distributed.sum(torch.tensor(seen, device=self.device)))
        metrics = {name: float(total) / max(seen, 1) for name, total in sums.items()}
        bad = [name for name in loss_names if not math.isfinite(metrics[name])]
        if bad:
            where = f"{self.tag}: " if self.tag else ""
            raise Diverged(f"{where}training diverged at epoch {epoch} ({bad[0]} is {metrics[bad[0]]}); "
                           f"try a smaller lr (now {self.params.get('lr')}).")
        return metrics

    def evaluate(self) -> dict:
        if self.task.evaluate is not None:
            with torch.no_grad():
                return self.task.evaluate(self)
        return evaluate_task(self.task, self.model, self.device)

    # -- checkpoints ---------------------------------------------------------------------------------
    def state(self) -> dict:
        state = {
            "model": self.model.state_dict(),
            "models": {n: m.state_dict() for n, m in self.models.items() if m is not self.model},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() if s else None for n, s in self.schedulers.items()},
            "scaler": self.precision.state_dict(),
            "rng": checkpoint.rng_state(),
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "history": self.history,
            "step_losses": self.step_losses,
            "record": self.task.record,
            "train_s": self.train_s,
        }
        data_state = getattr(self.task.train, "state_dict", None)
        if callable(data_state):  # data with a state of its own (a replay memory, an environment)
            state["data"] = data_state()
        return state

    def load_state(self, state: dict, path) -> None:
        what = f"this {self.run.path.parent.name} run's model" + (f" '{self.tag}'" if self.tag else "")
        checkpoint.load_weights(self.model, state["model"], path, what)
        for name, module in self.models.items():
            if module is not self.model:
                checkpoint.load_weights(module, state.get("models", {}).get(name, {}), path, f"{what} ({name})")
        for name, optimizer in self.optimizers.items():
            checkpoint.load_optimizer(optimizer, state.get("optimizers", {}).get(name, {}), path, what)
        for name, scheduler in self.schedulers.items():
            saved = state.get("schedulers", {}).get(name)
            if scheduler is not None and saved:
                try:
                    scheduler.load_state_dict(saved)
                except (KeyError, TypeError, ValueError) as err:
                    raise UserError(f"{path}: its scheduler state does not fit {self.params.get('scheduler')} "
                                    f"({err}); was the scheduler changed since it was written?") from None
        self.precision.load_state_dict(state.get("scaler"))
        if "data" in state and callable(getattr(self.task.train, "load_state_dict", None)):
            self.task.train.load_state_dict(state["data"])
        checkpoint.set_rng_state(state["rng"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.best, self.history = state["best"], state["history"]
        self.step_losses, self.train_s = list(state["step_losses"]), state["train_s"]
        self.task.record.clear()
        self.task.record.update(state["record"])

    def restore(self, resume: bool) -> int:
        """Load ``last.pt`` when resuming (before anything is written: a checkpoint that does not fit
        is refused with the folder untouched). Without one, training starts from the beginning."""
        if self.restored:
            return self.resumed_from
        self.restored = True
        last = self.ckpt_dir / "last.pt"
        if not resume or not last.exists():
            return 0
        # On the CPU first: RNG states must stay CPU tensors; weights and optimizer state are
        # copied to the model's device by load_state_dict.
        state = checkpoint.load(last, map_location="cpu")
        epochs = int(self.params["epochs"])
        if int(state.get("epoch", 0)) > epochs:
            raise UserError(f"epochs={epochs}: {last} has already trained {state['epoch']} epochs; give "
                            f"epochs >= {state['epoch']} to continue the run.")
        self.load_state(state, last)
        self.resumed_from = self.epoch
        return self.epoch

    def keep_best(self) -> None:
        """Hold the best weights in memory; they reach best.pt with the next checkpoint."""
        if not self.run.writer:
            return
        def copied(module):
            return {k: v.detach().clone() for k, v in module.state_dict().items()}

        # every model: a GAN's discriminator is part of what its held-out measure reads
        others = {name: copied(m) for name, m in self.models.items() if m is not self.model}
        self.pending_best = {"model": copied(self.model), "models": others, "epoch": self.epoch,
                             "best": dict(self.best)}

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

    # -- the whole fit -------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> FitResult:
        epochs = int(self.params["epochs"])
        self.restore(resume)
        self.run.begin()
        if resume:  # rows the killed run logged after its checkpoint (all of them, without one) go
            self.run.truncate_metrics(self.epoch, self.tag)
            self.run.info(f"resumed {self.tag or 'training'} at epoch {self.epoch}" if self.epoch else
                          f"no checkpoint of {self.tag or 'the run'} yet: training starts from the beginning", echo=True)
        steps = len(self.task.train) if hasattr(self.task.train, "__len__") else 0  # 0: unknown (episodes)
        self.progress = progress.Progress(epochs, self.epoch, steps, self.task.held_out,
                                          self.run.info, label=self.tag or self.run.path.name, enabled=self.run.writer)
        self.curves = Curves(self.run.path, self.tag, self.epoch, resumed=resume, enabled=self.run.writer)
        keep_freed_memory()
        try:
            with threads_for(self.model, self.device, self.task.cpu_threads):
                while self.epoch < epochs:
                    self.run_epoch(self.epoch + 1, final=self.epoch + 1 == epochs)
        finally:
            self.progress.close()
            self.curves.close()
        return FitResult(self.history, self.best, self.train_s, self.step, self.step_losses, self.resumed_from)

    def run_epoch(self, epoch: int, final: bool) -> None:
        """Train one epoch, evaluate, log, checkpoint."""
        task = self.task
        start = time.perf_counter()
        train_metrics = self.train_epoch(epoch)
        for scheduler in self.schedulers.values():
            if scheduler is not None and not is_plateau(scheduler):
                scheduler.step()
        self.train_s += time.perf_counter() - start
        test_metrics = self.evaluate()
        for scheduler in self.schedulers.values():
            if scheduler is not None and is_plateau(scheduler):
                scheduler.step(test_metrics.get(f"{task.held_out}_{task.loss_name}", train_metrics.get(task.loss_name)))
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
        self.progress.epoch(row)
        if self.report is not None:
            try:
                self.report(epoch, row)
            except BaseException:
                self.save(final=True)  # a pruned or interrupted run keeps its last finished epoch
                raise


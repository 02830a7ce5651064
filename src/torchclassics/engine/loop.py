"""The training loop: the subject of the lessons, in plain PyTorch.

    for epoch in epochs:
        for inputs, targets in batches:
            step(inputs, targets)          # zero_grad, forward, loss, backward, step: see steps.lesson_step
        evaluate on the held-out split; log; checkpoint

The step is the lesson's own, written out in :func:`steps.lesson_step`. An optimizer that needs a
closure (LBFGS) goes through :func:`steps.closure_step`; an experiment with its own step (a GAN's
discriminator-then-generator update) gives ``Task.step`` and keeps everything else the loop
gives: the rows of the run record, checkpoints, exact resume, pruning, progress, mixed precision, DDP.

What differs between lessons comes in through a :class:`Task` (models, data, loss, per-batch
metrics, an optional ``forward`` that carries an RNN's hidden state, hooks that record GIF
frames), never through a copy of this loop.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from .. import progress
from ..core import interrupts, messages
from ..core.errors import UserError
from ..rundir import layout
from ..rundir.metrics import Objective, held_out
from ..rundir.writer import RunWriter
from . import graphs, state
from .cadence import checkpoint_interval
from .device import keep_freed_memory
from .optim import build_optimizer, build_scheduler, is_plateau
from .precision import Precision
from .steps import NEEDS_CLOSURE, closure_step, detach_state, lesson_step
from .task import Fit, Task, accuracy_sum, plain_forward
from .tensorboard import Curves

__all__ = ["Task", "Fit", "Trainer", "Diverged", "accuracy_sum", "plain_forward", "detach_state", "evaluate_task",
           "build_optimizer", "lesson_step", "checkpoint_interval"]


class Diverged(UserError):
    """The loss became inf or NaN: the run stops instead of training on garbage. The caller, who knows
    which parameters were changed, says which is the likeliest cause."""

    def __init__(self, epoch: int, metric: str, value: float, tag: str = ""):
        where = f"{tag}: " if tag else ""
        super().__init__(f"{where}training diverged at epoch {epoch} ({metric} is {value})")
        self.epoch, self.metric, self.value, self.tag = epoch, metric, value, tag


@torch.no_grad()
def evaluate_task(task: Task, model: nn.Module, device: torch.device) -> dict:
    """Held-out loss and metrics averaged over every sample, in float32, named
    ``<held_out>_<name>`` (``test_mse``, ``val_accuracy``)."""
    if task.test is None or task.loss_fn is None:
        return {}
    model.eval()
    seen, hidden = 0, None
    totals = {k: torch.zeros((), device=device) for k in (task.loss_name, *task.metrics)}
    for inputs, targets in task.test.epoch(0):
        outputs, hidden = task.forward(model, inputs, hidden)
        if not task.carry_state:
            hidden = None
        outputs = outputs.float()
        n = len(targets)
        seen += n
        totals[task.loss_name] += task.loss_fn(outputs, targets) * n
        for name, metric in task.metrics.items():
            totals[name] += metric(outputs, targets)
    return {held_out(task.held_out, k): float(v) / max(seen, 1) for k, v in totals.items()}


class Trainer:
    """Runs a Task for ``params['epochs']`` epochs, writing metrics and checkpoints into ``run``."""

    def __init__(self, task: Task, params: dict, run: RunWriter | None, device: torch.device,
                 objective: Objective | None = None, tag: str = "", distributed=None, report: Callable | None = None):
        self.task, self.params, self.run, self.device = task, params, run, device
        self.objective = objective or task.default_objective()
        self.tag, self.report, self.distributed = tag, report, distributed
        self.models = {name: module.to(device) for name, module in task.models.items()}
        self.model = task.model
        self.wrapped = {name: (distributed.wrap(m) if distributed and name in task.optimized else m)
                        for name, m in self.models.items()}
        self.train_model = self.wrapped[task.main_name]
        self.precision = Precision(params.get("precision", "fp32"), device)
        graphed = self.whole_step_graphs()
        self.optimizers = {name: build_optimizer(params, self.models[name], device, capturable=graphed)
                           for name in task.optimized}
        self.schedulers = {name: build_scheduler(params, opt) for name, opt in self.optimizers.items()}
        self.step_fn = graphs.GraphedLessonStep() if graphed else (task.step or self.default_step())
        self.clip_norm = params.get("clip_grad_norm")
        self.history: list[dict] = []
        self.step_losses: list[float] = []
        self.best: dict = {"metric": self.objective.metric, "value": None, "epoch": None}
        self.epoch, self.step = 0, 0
        self.train_s = 0.0
        self.hidden = None
        self.pending_best: state.BestWeights | None = None
        self.restored = False
        self.resumed_from = 0
        self.saved_epoch = 0  # the epoch last.pt holds (an interrupted run says where it will continue)
        self.last_save = time.monotonic()
        self.checkpoint_seconds = checkpoint_interval()
        self.tensorboard = True  # curves in the run's tensorboard/ when TensorBoard is installed (False: none)

    @property
    def writes(self) -> bool:
        return self.run is not None and self.run.writer

    @property
    def optimizer(self):
        """The main model's optimizer (the lesson step's)."""
        return self.optimizers[self.task.main_name]

    def checkpoint(self, which: str):
        return layout.checkpoint_path(self.run.path, which, self.tag)

    def whole_step_graphs(self) -> bool:
        """``cuda_graphs``: capture the whole step when it can be; say once why not otherwise."""
        if not graphs.wanted(self.params, self.device):
            return False
        reason = graphs.why_not(self)
        if reason is not None:
            messages.note(f"training without CUDA graphs: {reason}")
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
            name = name or self.task.main_name
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
            self.hidden = detach_state(self.hidden) if task.carry_state else None
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
            self.progress.step(epoch, in_epoch, lambda first=first: float(first))
        if losses:  # one device-to-host copy per epoch, not one per step
            self.step_losses.extend(torch.stack(losses).float().tolist())
        if self.distributed:
            sums = {name: self.distributed.sum(torch.as_tensor(total, device=self.device))
                    for name, total in sums.items()}
            seen = int(self.distributed.sum(torch.tensor(seen, device=self.device)))
        metrics = {name: float(total) / max(seen, 1) for name, total in sums.items()}
        bad = [name for name in loss_names if not math.isfinite(metrics[name])]
        if bad:
            raise Diverged(epoch, bad[0], metrics[bad[0]], self.tag)
        return metrics

    def evaluate(self) -> dict:
        if self.task.evaluate is not None:
            with torch.no_grad():
                return self.task.evaluate(self)
        return evaluate_task(self.task, self.model, self.device)

    # -- checkpoints ---------------------------------------------------------------------------------
    def state(self) -> state.TrainingState:
        data_state = getattr(self.task.train, "state_dict", None)
        return state.TrainingState(
            model=self.model.state_dict(),
            models={n: m.state_dict() for n, m in self.models.items() if m is not self.model},
            optimizers={n: o.state_dict() for n, o in self.optimizers.items()},
            schedulers={n: s.state_dict() if s else None for n, s in self.schedulers.items()},
            scaler=self.precision.state_dict(), rng=state.rng_state(), epoch=self.epoch, step=self.step,
            best=self.best, history=self.history, step_losses=self.step_losses, record=self.task.record,
            train_s=self.train_s, threads=torch.get_num_threads(), params=self.params,
            # data with a state of its own (a replay memory, an environment)
            data=data_state() if callable(data_state) else None)

    def load_state(self, saved: state.TrainingState, path) -> None:
        what = f"this {self.run.path.parent.name} run's model" + (f" '{self.tag}'" if self.tag else "")
        state.load_weights(self.model, saved.model, path, what)
        for name, module in self.models.items():
            if module is not self.model:
                state.load_weights(module, saved.models.get(name, {}), path, f"{what} ({name})")
        for name, optimizer in self.optimizers.items():
            state.load_optimizer(optimizer, saved.optimizers.get(name, {}), path, what)
        for name, scheduler in self.schedulers.items():
            kept = saved.schedulers.get(name)
            if scheduler is not None and kept:
                try:
                    scheduler.load_state_dict(kept)
                except (KeyError, TypeError, ValueError) as err:
                    raise UserError(f"{path}: its scheduler state does not fit {self.params.get('scheduler')} "
                                    f"({err}); was the scheduler changed since it was written?") from None
        self.precision.load_state_dict(saved.scaler)
        if saved.data is not None and callable(getattr(self.task.train, "load_state_dict", None)):
            self.task.train.load_state_dict(saved.data)
        state.set_rng_state(saved.rng)
        self.epoch, self.step = saved.epoch, saved.step
        self.best, self.history = dict(saved.best), list(saved.history)
        self.step_losses, self.train_s = list(saved.step_losses), float(saved.train_s)
        # What the checkpoint kept replaces what build made; what a newer release's build adds stays.
        self.task.record.update(saved.record)

    def restore(self, resume: bool) -> int:
        """Load ``last.pt`` when resuming, verified, before anything is written (a checkpoint that is
        damaged or does not fit is refused with the folder untouched). Without one, training starts
        from the beginning."""
        if self.restored:
            return self.resumed_from
        self.restored = True
        last = self.checkpoint(layout.LAST)
        if not resume or not last.exists():
            return 0
        # On the CPU first: RNG states must stay CPU tensors; weights and optimizer state are
        # copied to the model's device by load_state_dict.
        saved = state.load_training_state(self.run.folder.own(last), map_location="cpu")
        epochs = int(self.params["epochs"])
        self.check_same_params(saved, last)
        if saved.epoch > epochs:
            raise UserError(f"epochs={epochs}: {last} has already trained {saved.epoch} epochs; give "
                            f"epochs >= {saved.epoch} to continue the run.")
        self.load_state(saved, last)
        self.resumed_from = self.saved_epoch = self.epoch
        return self.epoch

    def check_same_params(self, saved: state.TrainingState, path) -> None:
        """A resumed run trains on with what its checkpoint trained with (only the epochs may grow): a
        params.json edited since is refused, naming what changed."""
        if saved.params is None:  # a checkpoint of the release before this record
            return
        changed = sorted(key for key in {*saved.params, *self.params} - {"epochs"}
                         if saved.params.get(key) != self.params.get(key))
        if changed:
            shown = "; ".join(f"{key} {saved.params.get(key)!r} -> {self.params.get(key)!r}" for key in changed)
            raise UserError(f"{path} was trained with other parameters than the run's params.json now says ({shown});"
                            " put them back, or start a new run.")

    def keep_best(self) -> None:
        """Hold the best weights in memory; they reach best.pt with the next checkpoint."""
        if not self.writes:
            return

        def copied(module):
            return {k: v.detach().clone() for k, v in module.state_dict().items()}

        # every model: a GAN's discriminator is part of what its held-out measure reads
        others = {name: copied(m) for name, m in self.models.items() if m is not self.model}
        self.pending_best = state.BestWeights(model=copied(self.model), models=others, epoch=self.epoch,
                                              best=dict(self.best))

    def save(self, final: bool = False) -> None:
        """Write best.pt (if it changed) then last.pt, at most every ``checkpoint_seconds``.

        Tiny lessons run hundreds of epochs a second; writing every epoch would cost more
        than training. Resuming is exact from any epoch, so the interval loses only time."""
        due = time.monotonic() - self.last_save >= self.checkpoint_seconds
        if not self.writes or not (final or due):
            return
        self.run.real_folder(self.checkpoint(layout.LAST).parent)
        with interrupts.deferred():  # last.pt and the epoch an interrupted run names agree
            if self.pending_best is not None:
                state.save(self.pending_best, self.checkpoint(layout.BEST))
                self.pending_best = None
            state.save(self.state(), self.checkpoint(layout.LAST))
            self.saved_epoch = self.epoch
        self.last_save = time.monotonic()

    # -- the whole fit -------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> Fit:
        epochs = int(self.params["epochs"])
        self.restore(resume)
        self.run.begin()
        if resume:  # the rows become the checkpoint's: later ones go, lost ones come back
            self.run.resume_rows(self.tag, self.history)
            said = (f"resumed {self.tag or 'training'} at epoch {self.epoch}" if self.epoch else
                    f"no checkpoint of {self.tag or 'the run'} yet: training starts from the beginning")
            self.run.info(said, echo=True)
        steps = len(self.task.train) if hasattr(self.task.train, "__len__") else 0  # 0: unknown (episodes)
        self.progress = progress.Progress(epochs, self.epoch, steps, self.run.info,
                                          label=self.tag or self.run.path.name, enabled=self.run.writer)
        self.curves = Curves(lambda: self.run.real_folder(self.run.path / layout.TENSORBOARD), self.tag, self.epoch,
                             resumed=resume, enabled=self.run.writer and self.tensorboard)
        keep_freed_memory()
        try:
            while self.epoch < epochs:
                self.run_epoch(self.epoch + 1, final=self.epoch + 1 == epochs)
        except BaseException as err:  # Ctrl-C, a divergence, a full disk: end the curves without waiting on them
            self.progress.close()
            self.curves.close(interrupted=True)
            if isinstance(err, KeyboardInterrupt) and not hasattr(err, "saved_epoch"):
                err.saved_epoch, err.tag = self.saved_epoch, self.tag  # where --resume will continue
            raise
        self.progress.close()
        self.curves.close()
        return Fit(self.history, self.best, self.train_s, self.step, self.step_losses, self.task.record,
                   self.resumed_from)

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
                loss = test_metrics.get(held_out(task.held_out, task.loss_name), train_metrics.get(task.loss_name))
                scheduler.step(loss)
        if task.on_epoch_end is not None:
            task.on_epoch_end(epoch, self.model, task.record)
        row = {"epoch": epoch, "step": self.step, **train_metrics, **test_metrics,
               "lr": self.optimizer.param_groups[0]["lr"], "train_s": round(self.train_s, 4)}
        if self.tag:
            row["tag"] = self.tag
        self.history.append(row)
        self.epoch = epoch
        if self.objective.better(row.get(self.objective.metric), self.best["value"]):
            self.best = {"metric": self.objective.metric, "value": row[self.objective.metric], "epoch": epoch}
            self.keep_best()
        # The row first: a checkpoint never claims an epoch whose row is missing (a resume
        # rewrites the rows from the checkpoint).
        self.run.append_row(row)
        self.save(final=final)
        self.curves.log(row)
        self.progress.epoch(row)
        if self.report is not None:
            try:
                self.report(epoch, row)
            except BaseException:
                self.save(final=True)  # a pruned or interrupted run keeps its last finished epoch
                raise

"""What every experiment provides, and the defaults most of them use.

An experiment keeps nothing per run on ``self``: its life is a fixed sequence of calls, each given
what it needs.

    build(params, device) -> Task           data, model(s), loss, hooks; what a later step needs goes
                                            into the Task: ``context`` (in memory, made again by build)
                                            or ``record`` (checkpointed with the weights)
    parts(task, params) -> {tag: Part}      the models trained one after another (default: one, tag "")
    check(params, task, device)             what only torch can judge, before anything is written
    train(parts, make_trainer, resume)      fills each part's Fit
    main_part(run parts) -> tag             whose model is the run's (evaluate, predict, export)
    final_metrics(run), results(run)        a FinishedRun's metrics and the rest of its summary
    figures(run, folder)                    drawn from a FinishedRun alone
    predict(run, inputs)

A :class:`FinishedRun` is built either from the live objects right after training (nothing reloaded)
or from a run directory (``evaluate``, ``predict``, ``export``, ``figures RUN``): both give the same
numbers and the same figures.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..core.errors import UserError
from ..engine.loop import Task, Trainer
from ..engine.memory import check_fits
from ..engine.optim import check_training_setup
from ..engine.precision import Precision
from ..params import sources
from ..rundir.metrics import Objective, row_metrics
from ..rundir.records import Summary
from .finished import MAIN, FinishedRun, Part


class Experiment:
    """Subclass, decorate with ``@experiment("name")``, and give at least ``build``.

    Its description and parameters are data: ``defaults/<name>/params.json`` and ``schema.json``.
    """

    name = ""
    # What best.pt follows and search optimises: Objective(metric, "min" | "max"), or a (metric, mode)
    # pair; None: the held-out loss, lower is better.
    objective: Objective | tuple | None = None
    part_label = "model"  # how the summary's best names the winning part of a run of several

    @property
    def description(self) -> str:
        return sources.description(self.name)

    def goal(self, task: Task) -> Objective:
        """The declared objective, or the task's held-out loss."""
        if self.objective is None:
            return task.default_objective()
        return self.objective if isinstance(self.objective, Objective) else Objective(*self.objective)

    # -- building --------------------------------------------------------------------------------------
    def build(self, params: dict, device: torch.device) -> Task:
        raise NotImplementedError

    def rebuild(self, params: dict, device: torch.device, record: dict, need_data: bool) -> Task:
        """The Task of a finished run (its weights come from a checkpoint, ``record`` from its last.pt):
        whole for evaluate (``need_data``); for predict and export the model alone where the
        experiment can make it without the data (:meth:`model_alone`)."""
        if not need_data:
            task = self.model_alone(params, device, record)
            if task is not None:
                return task
        return self.build(params, device)

    def model_alone(self, params: dict, device: torch.device, record: dict) -> Task | None:
        """A Task holding the untrained model and no data, or None where the model cannot be made
        without the data."""
        return None

    def parts(self, task: Task, params: dict) -> dict[str, Part]:
        """The models a run trains one after another, by tag (their checkpoints: checkpoints/<tag>/)."""
        return {MAIN: Part(task, params)}

    def export_metadata(self, task: Task) -> dict:
        """What an exported model needs to be used without this package's run folder: ``classes`` (the
        label of each output), ``prepare`` (how a file becomes an input: "mnist_digit" or "image"),
        ``normalisation`` (``mean`` and ``std`` per channel), ``image_size``. Default: nothing more."""
        return {}

    def example_input(self, task: Task) -> torch.Tensor:
        """Two real inputs of the model, for export: the held-out split's first batch."""
        data = task.test if task.test is not None else task.train
        if data is None:
            raise UserError(f"{self.name}: no data to take an example input from.")
        inputs, _ = next(iter(data.epoch(0)))
        return inputs[:2].detach().cpu()

    # -- before anything is written --------------------------------------------------------------------
    def check(self, params: dict, task: Task, device: torch.device | None = None) -> None:
        """Raise a UserError for what only torch can judge, before the run directory is made: whether a step
        fits in memory, each part's optimizer and scheduler over the whole schedule, and the precision (one
        forward of an example under its autocast: bf16 kernels are missing for some layers on some CPUs)."""
        device = device or torch.device("cpu")
        check_fits(task, device)
        for part in self.parts(task, params).values():
            check_training_setup(part.params)
        precision = Precision(params.get("precision", "fp32"), device)
        if precision.dtype is not None:
            self.check_precision(task, precision, device)

    def check_precision(self, task: Task, precision: Precision, device: torch.device) -> None:
        try:
            example = self.example_input(task).to(device)
        except Exception:  # an experiment without an example: the first training step will tell
            return
        model = task.model.to(device)
        try:
            with torch.no_grad(), precision.autocast():
                model(example)
        except RuntimeError as err:
            raise UserError(f"precision={precision.kind}: this {self.name} model cannot run under "
                            f"{precision.kind} autocast on {device.type} ({' '.join(str(err).split())[:120]}); "
                            "use fp32.") from None

    # -- training ----------------------------------------------------------------------------------------
    def train(self, parts: dict[str, Part], make_trainer: Callable[..., Trainer], resume: bool) -> None:
        """Train every part, one after another; ``make_trainer(task, params, tag)`` gives a Trainer
        writing into this run. Every part's checkpoint is verified before the first write."""
        trainers = {tag: make_trainer(part.task, part.params, tag) for tag, part in parts.items()}
        for trainer in trainers.values():
            trainer.restore(resume)
        for tag, trainer in trainers.items():
            parts[tag].fit = trainer.fit(resume=resume)

    def main_part(self, parts: dict[str, Part]) -> str:
        """The part whose model is the run's: the only one by default."""
        return next(iter(parts))

    # -- a finished run ----------------------------------------------------------------------------------
    def final_metrics(self, run: FinishedRun) -> dict:
        """Flat name -> value; held-out metrics start with ``test_`` (or ``val_``). Default: the main
        part's last row."""
        history = run.parts[run.main].fit.history
        return row_metrics(history[-1]) if history else {}

    def results(self, run: FinishedRun) -> dict:
        """Anything else worth keeping in the run's summary (e.g. first predictions)."""
        return {}

    def figures(self, run: FinishedRun, folder: Path) -> None:
        """Draw into ``folder``. Never trains. Default: the loss curves and the held-out metrics' curves
        (an experiment of one's own gets them without a line of its own; so does one whose figures()
        draws nothing)."""
        default_figures(run, folder)

    def stopped_parts(self, summary: Summary | None) -> dict[str, str]:
        """Parts that stopped early in a finished run (tag -> why), as its summary says: no Fit for them."""
        return {}

    def predict(self, run: FinishedRun, inputs: list) -> list[dict]:
        raise UserError(f"predict: {self.name} runs do not classify files or texts (cnn_mnist, lstm_mnist, "
                        "dogs_vs_cats and char_rnn_names runs do).")


def default_figures(run: FinishedRun, folder: Path) -> list[Path]:
    """loss.png (with accuracy beside the loss when measured), and metrics.png for the other metrics the
    Task measures (train and held-out per epoch)."""
    from ..viz.plots import metric_curves

    name = run.experiment.name
    drawn = [draw_loss(run, folder / "loss.png", f"{name}: {run.task.loss_name}")]
    history = run.fit.history if run.fit is not None else []
    others = [metric for metric in run.task.metrics if metric != "accuracy" and any(metric in row for row in history)]
    if others:
        drawn.append(metric_curves(history, others, folder / "metrics.png", name, held_out=run.task.held_out))
    return drawn


def draw_loss(run: FinishedRun, path: Path, title: str) -> Path:
    """The loss figure of a run: per step when there are few epochs, train and held-out."""
    from ..viz.plots import loss_curves

    task, fit = run.task, run.fit
    return loss_curves(fit.history, path, title, loss=task.loss_name, held_out=task.held_out,
                       step_losses=fit.step_losses)


def lowest_final(metric: str):
    """A ``main_part`` choosing the part whose last row has the lowest ``metric`` (a comparison's winner)."""

    def main_part(self, parts: dict[str, Part]) -> str:
        finished = {tag: part for tag, part in parts.items() if part.fit is not None and part.fit.history}
        if not finished:
            raise UserError(f"{self.name}: no part finished training.")
        return min(finished, key=lambda tag: finished[tag].fit.history[-1][metric])

    return main_part

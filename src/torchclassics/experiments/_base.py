"""What every experiment provides, and the defaults most of them use."""
from __future__ import annotations

from pathlib import Path

import torch

from ..engine.loop import FitResult, Task, Trainer, build_optimizer, build_scheduler
from ..engine.rundir import RunDir
from ..errors import UserError


def frames_every(every: int, snapshot):
    """An ``on_epoch_end`` hook keeping ``snapshot(model)`` (a dict of small tensors) at epoch 1
    and every ``every`` epochs, in ``record["frames"]``: the frames of a training GIF."""

    def on_epoch_end(epoch, model, record):
        if epoch % every == 0 or epoch == 1:
            model.eval()
            with torch.no_grad():
                record.setdefault("frames", []).append({"epoch": epoch, **snapshot(model)})

    return on_epoch_end


class Experiment:
    """Subclass, decorate with ``@experiment("name")``, and give at least ``build``.

    The engine calls, in order: ``build`` (data, model, loss: a Task), ``train``
    (by default the one Trainer), ``final_metrics`` and, on the writing process
    only, ``figures``. Everything shown to a reader of the run directory comes
    from these.
    """

    name = ""
    description = ""
    # What search optimises and best.pt follows: (metric, "min" | "max").
    objective = ("test_loss", "min")

    def build(self, params: dict, device: torch.device) -> Task:
        raise NotImplementedError

    def check(self, params: dict, task: Task) -> None:
        """Raise a UserError for what only the optimizer or scheduler can judge (their
        arguments), before the run directory is made."""
        build_scheduler(params, build_optimizer(params, task.model))

    def checkpoint_folder(self, run_dir: RunDir) -> Path:
        """Where evaluate, predict and export find best.pt / last.pt."""
        return run_dir.checkpoints

    def build_from_run(self, params: dict, device: torch.device, run_dir: RunDir) -> Task:
        """The Task of a finished run (evaluate, predict, export); may use what the run
        recorded (e.g. class names) instead of its data."""
        return self.build(params, device)

    def train(self, task: Task, make_trainer, resume: bool) -> tuple[FitResult, Trainer]:
        """``make_trainer(task, params=None, tag="")`` gives a Trainer writing into this run."""
        trainer = make_trainer(task)
        return trainer.fit(resume=resume), trainer

    # What the loss is called in summary.json: "mse" makes readers find mse and test_mse.
    loss_name = "loss"

    def reported_name(self, metric: str) -> str:
        """The summary's name of an engine metric (``test_loss`` -> ``test_mse`` for MSE lessons)."""
        if metric in ("loss", "test_loss"):
            return metric.replace("loss", self.loss_name)
        return metric

    def final_metrics(self, task: Task, fit: FitResult, trainer: Trainer) -> dict:
        """Flat name -> value; held-out metrics start with ``test_``. Default: the last epoch's row."""
        last = dict(fit.history[-1]) if fit.history else {}
        for key in ("epoch", "step", "lr", "train_s", "tag"):
            last.pop(key, None)
        return {self.reported_name(key): value for key, value in last.items()}

    def extra_summary(self, task: Task, fit: FitResult, trainer: Trainer) -> dict:
        """Anything else worth keeping in summary.json (e.g. first predictions)."""
        return {}

    def figures(self, task: Task, fit: FitResult, trainer: Trainer, figures_dir: Path) -> None:
        """Draw into ``figures_dir``. Never trains."""

    def predict(self, model, params: dict, files: list[Path], device) -> list[dict]:
        raise UserError(f"predict: {self.name} runs do not classify image files "
                        "(cnn_mnist, lstm_mnist and dogs_vs_cats runs do).")

"""What every experiment provides, and the defaults most of them use."""
from __future__ import annotations

from pathlib import Path

import torch

from .. import config
from ..engine.loop import FitResult, Task, Trainer, check_training_setup
from ..engine.precision import Precision
from ..engine.rundir import RunDir
from ..errors import UserError

ROW_BOOKKEEPING = ("epoch", "step", "lr", "train_s", "tag")


def frames_every(every: int, snapshot):
    """An ``on_epoch_end`` hook keeping ``snapshot(model)`` (a dict of small tensors) at epoch 1
    and every ``every`` epochs, in ``record["frames"]``: the frames of a training GIF."""

    def on_epoch_end(epoch, model, record):
        if epoch % every == 0 or epoch == 1:
            model.eval()
            with torch.no_grad():
                record.setdefault("frames", []).append({"epoch": epoch, **snapshot(model)})

    return on_epoch_end


def draw_loss(task: Task, fit: FitResult, path: Path, title: str) -> Path:
    """The loss figure of one trained Task: per step when there are few epochs, train and held-out."""
    from ..viz.plots import loss_curves

    return loss_curves(fit.history, path, title, loss=task.loss_name, held_out=task.held_out,
                       step_losses=fit.step_losses)


def combine_fits(fits: dict[str, FitResult], best_name: str, label: str) -> FitResult:
    """One FitResult for a run of several sub-runs (one net each): every net's rows; the best net's
    best epoch, named under ``label``; resumed from the latest epoch any sub-run resumed from."""
    history = [row for fit in fits.values() for row in fit.history]
    return FitResult(history, dict(fits[best_name].best, **{label: best_name}),
                     sum(f.train_s for f in fits.values()), sum(f.steps for f in fits.values()), [],
                     max(f.resumed_from for f in fits.values()))


def every_nth_epoch(params: dict) -> int:
    """Epochs between two GIF frames: about ``gif_frames`` frames whatever the length."""
    return max(1, params["epochs"] // max(1, params.get("gif_frames", 40)))


class Experiment:
    """Subclass, decorate with ``@experiment("name")``, and give at least ``build``.

    The engine calls, in order: ``build`` (data, model, loss: a Task), ``check`` (before
    anything is written), ``train`` (by default the one Trainer), ``final_metrics`` and, on
    the writing process only, ``figures``. Everything shown to a reader of the run
    directory comes from these. Its description and parameters are data:
    ``defaults/<name>/params.json`` and ``schema.json``.
    """

    name = ""
    # What search optimises and best.pt follows: (metric, "min" | "max"); the Task's monitor.
    objective = ("test_loss", "min")

    @property
    def description(self) -> str:
        return config.description(self.name)

    def build(self, params: dict, device: torch.device) -> Task:
        raise NotImplementedError

    def check(self, params: dict, task: Task, device: torch.device = torch.device("cpu")) -> None:
        """Raise a UserError for what only torch can judge, before the run directory is made: the
        optimizer's and scheduler's arguments (one step on a copy), and the precision (one forward
        of an example under its autocast: bf16 kernels are missing for some layers on some CPUs)."""
        for name in task.optimized:
            check_training_setup(params, task.models[name], torch.device("cpu"))
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

    def checkpoint_folder(self, run_dir: RunDir) -> Path:
        """Where evaluate, predict and export find best.pt / last.pt."""
        return run_dir.checkpoints

    def build_from_run(self, params: dict, device: torch.device, run_dir: RunDir, need_data: bool) -> Task:
        """The Task of a finished run: evaluate (``need_data``) builds it whole; predict and export
        take :meth:`model_alone` where the experiment gives one, so no data is read or downloaded."""
        if not need_data:
            task = self.model_alone(params, device, run_dir)
            if task is not None:
                return task
        return self.build(params, device)

    def model_alone(self, params: dict, device: torch.device, run_dir: RunDir) -> Task | None:
        """A Task holding the untrained model and no data (its weights come from a checkpoint),
        or None where the model cannot be made without the data."""
        return None

    def example_input(self, task: Task) -> torch.Tensor:
        """Two real inputs of the model, for export: the held-out split's first batch."""
        data = task.test if task.test is not None else task.train
        if data is None:
            raise UserError(f"{self.name}: no data to take an example input from.")
        inputs, _ = next(iter(data.epoch(0)))
        return inputs[:2].detach().cpu()

    def train(self, task: Task, make_trainer, resume: bool) -> tuple[FitResult, Trainer]:
        """``make_trainer(task, params=None, tag="")`` gives a Trainer writing into this run."""
        trainer = make_trainer(task)
        return trainer.fit(resume=resume), trainer

    def final_metrics(self, task: Task, fit: FitResult, trainer: Trainer) -> dict:
        """Flat name -> value; held-out metrics start with ``test_`` (or ``val_``). Default: the
        last epoch's row."""
        last = dict(fit.history[-1]) if fit.history else {}
        return {key: value for key, value in last.items() if key not in ROW_BOOKKEEPING}

    def extra_summary(self, task: Task, fit: FitResult, trainer: Trainer) -> dict:
        """Anything else worth keeping in summary.json (e.g. first predictions)."""
        return {}

    def figures(self, task: Task, fit: FitResult, trainer: Trainer, figures_dir: Path) -> None:
        """Draw into ``figures_dir``. Never trains."""

    def predict(self, model, params: dict, files: list[Path], device) -> list[dict]:
        raise UserError(f"predict: {self.name} runs do not classify image files "
                        "(cnn_mnist, lstm_mnist and dogs_vs_cats runs do).")

"""One 1 -> 20 -> 1 net per optimizer on the same batches (the tutorial series' "optimizers").

Every net starts from the same weights and sees the same batches in the same order,
so the curves differ by the optimizer alone (the tutorial's nets started apart). The
winner is the optimizer with the lowest held-out MSE at the end; summary.json names it
once (``best_optimizer``), and its best epoch is the run's ``best`` (the checkpoint that
evaluate, predict and export use)."""
from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

from ..config import OPTIMIZER_ALIASES
from ..data.batches import TensorBatches
from ..data.synthetic import parabola
from ..engine.loop import Diverged, FitResult, Task
from ..models.mlp import Net
from ..registry import experiment
from ..viz.plots import log_scale_if_wide, marker_for, new_figure, save, whole_number_ticks
from ._base import Experiment, combine_fits


def optimizer_params(params: dict, name: str) -> dict:
    """The engine's params for one net: its torch.optim class and that optimizer's arguments."""
    return {**params, "optimizer": OPTIMIZER_ALIASES.get(name, name),
            "optimizer_args": dict(params.get("optimizer_args", {}).get(name, {}))}


def winner(fits: dict[str, FitResult]) -> str:
    """The optimizer whose net ends with the lowest held-out MSE."""
    return min(fits, key=lambda name: fits[name].history[-1]["test_mse"])


@experiment("optimizers")
class Optimizers(Experiment):
    objective = ("test_mse", "min")

    def build(self, params, device):
        self.params, self.device = params, device
        x, y = parabola(params["n_points"], params["seed"], params["noise"], uniform_noise=False)
        g = torch.Generator().manual_seed(params["seed"] + 1)
        x_test = torch.rand(params["n_points"] // 5, 1, generator=g) * 2 - 1
        y_test = x_test.pow(2) + params["noise"] * torch.randn(x_test.shape, generator=g)
        self.train_data = TensorBatches(x, y, batch_size=params["batch_size"], shuffle=True, seed=params["seed"], device=device)
        self.test_data = TensorBatches(x_test, y_test, batch_size=len(x_test), shuffle=False, device=device)
        self.nets = {}
        for name in params["optimizers"]:
            torch.manual_seed(params["seed"])  # the same initial weights for every optimizer
            self.nets[name] = Net(1, params["hidden"], 1)
        return self.task_for(params["optimizers"][0])

    def check(self, params, task, device=None):
        for name in params["optimizers"]:
            super().check(optimizer_params(params, name), self.task_for(name), device or self.device)

    def checkpoint_folder(self, run_dir):
        """The folder of the winning optimizer (summary.json), else the first one."""
        summary = run_dir.path / "summary.json"
        best = json.loads(summary.read_text()).get("best_optimizer") if summary.is_file() else None
        return run_dir.checkpoints / (best or run_dir.params()["optimizers"][0])

    def task_for(self, name: str) -> Task:
        return Task(model=self.nets[name], train=self.train_data, test=self.test_data, loss_fn=nn.MSELoss(),
                    loss_name="mse")

    def train(self, task, make_trainer, resume):
        trainers = {name: make_trainer(self.task_for(name), optimizer_params(self.params, name), tag=name)
                    for name in self.params["optimizers"]}
        for trainer in trainers.values():  # every checkpoint checked before the first write
            trainer.restore(resume)
        self.fits, self.diverged = {}, {}
        for name, trainer in trainers.items():
            try:
                self.fits[name] = trainer.fit(resume=resume)
            except Diverged as err:  # one optimizer blowing up is a result of the comparison, not an error
                self.diverged[name] = str(err)
                trainer.run.info(str(err), echo=True)
        if not self.fits:
            raise Diverged(f"every optimizer diverged at lr={self.params['lr']}; try a smaller lr.")
        best = winner(self.fits)
        return combine_fits(self.fits, best, "optimizer"), trainers[best]

    def final_metrics(self, task, fit, trainer):
        metrics = {}
        for name, result in self.fits.items():
            last = result.history[-1]
            metrics[f"mse_{name}"] = last["mse"]
            metrics[f"test_mse_{name}"] = last["test_mse"]
        metrics["test_mse"] = self.fits[winner(self.fits)].history[-1]["test_mse"]
        return metrics

    def extra_summary(self, task, fit, trainer):
        return {"best_optimizer": winner(self.fits), "diverged": self.diverged}

    def figures(self, task, fit, trainer, figures_dir):
        fig = new_figure(9, 4)
        ax = fig.add_subplot(1, 2, 1)
        steps = np.arange(1, max(len(result.step_losses) for result in self.fits.values()) + 1)
        for name, result in self.fits.items():
            ax.plot(steps[:len(result.step_losses)], result.step_losses, label=name, lw=1,
                    marker=marker_for(len(steps)), ms=3)
        ax.set(xlabel="step", ylabel="training MSE (batch)", ylim=(0, 0.2), title="loss per step")
        whole_number_ticks(ax, steps)
        ax.legend()
        ax = fig.add_subplot(1, 2, 2)
        rows = [row for result in self.fits.values() for row in result.history]
        for name, result in self.fits.items():
            ax.plot([r["epoch"] for r in result.history], [r["test_mse"] for r in result.history], marker="o", ms=3,
                    label=name)
        ax.set(xlabel="epoch", ylabel="held-out MSE", title="held-out MSE per epoch")
        whole_number_ticks(ax, [row["epoch"] for row in rows])
        log_scale_if_wide(ax, [row["test_mse"] for row in rows], span=3)  # log as the optimizers draw apart
        ax.legend()
        save(fig, figures_dir / "loss.png")

"""One 1 -> 20 -> 1 net per optimizer on the same batches (the tutorial series' "optimizers").

Every net starts from the same weights and sees the same batches in the same order,
so the curves differ by the optimizer alone (the tutorial's nets started apart). The
winner is the optimizer with the lowest held-out MSE at the end; the run's summary names it
once (``best_optimizer``), and its best epoch is the run's ``best`` (the checkpoint that
evaluate, predict and export use)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.batches import TensorBatches
from ..data.synthetic import parabola
from ..engine.loop import Diverged, Task
from ..models.mlp import Net
from ..params.torch_names import OPTIMIZER_ALIASES
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.plots import log_scale_if_wide, marker_for, new_figure, save, whole_number_ticks
from ._base import Experiment, Part, lowest_final


def optimizer_params(params: dict, name: str) -> dict:
    """The engine's params for one net: its torch.optim class and that optimizer's arguments."""
    return {**params, "optimizer": OPTIMIZER_ALIASES.get(name, name),
            "optimizer_args": dict(params.get("optimizer_args", {}).get(name, {}))}


@experiment("optimizers")
class Optimizers(Experiment):
    objective = Objective("test_mse", "min")
    part_label = "optimizer"
    main_part = lowest_final("test_mse")  # the optimizer whose net ends with the lowest held-out MSE

    def build(self, params, device):
        x, y = parabola(params["n_points"], params["seed"], params["noise"], uniform_noise=False)
        g = torch.Generator().manual_seed(params["seed"] + 1)
        x_test = torch.rand(params["n_points"] // 5, 1, generator=g) * 2 - 1
        y_test = x_test.pow(2) + params["noise"] * torch.randn(x_test.shape, generator=g)
        train = TensorBatches(x, y, batch_size=params["batch_size"], shuffle=True, seed=params["seed"], device=device)
        test = TensorBatches(x_test, y_test, batch_size=len(x_test), shuffle=False, device=device)
        nets = {}
        for name in params["optimizers"]:
            torch.manual_seed(params["seed"])  # the same initial weights for every optimizer
            nets[name] = Net(1, params["hidden"], 1)
        first = params["optimizers"][0]
        return Task(model=nets[first], train=train, test=test, loss_fn=nn.MSELoss(), loss_name="mse",
                    context={"nets": nets})

    def parts(self, task, params):
        """One net per optimizer, on the same batches, each with its torch.optim class and arguments."""
        return {name: Part(Task(model=net, train=task.train, test=task.test, loss_fn=nn.MSELoss(), loss_name="mse",
                                context=task.context), optimizer_params(params, name))
                for name, net in task.context["nets"].items()}

    def train(self, parts, make_trainer, resume):
        trainers = {name: make_trainer(part.task, part.params, name) for name, part in parts.items()}
        for trainer in trainers.values():  # every checkpoint checked before the first write
            trainer.restore(resume)
        diverged = []
        for name, trainer in trainers.items():
            try:
                parts[name].fit = trainer.fit(resume=resume)
            except Diverged as err:  # one optimizer blowing up is a result of the comparison, not an error
                parts[name].stopped = str(err)
                diverged.append(err)
                trainer.run.info(str(err), echo=True)
        if len(diverged) == len(parts):
            first = diverged[0]
            raise Diverged(first.epoch, first.metric, first.value, f"every optimizer, {first.tag} first")

    def stopped_parts(self, summary):
        return dict(summary.results.get("diverged") or {}) if summary is not None else {}

    def final_metrics(self, run):
        metrics = {}
        for name, fit in run.fits.items():
            last = fit.history[-1]
            metrics[f"mse_{name}"] = last["mse"]
            metrics[f"test_mse_{name}"] = last["test_mse"]
        metrics["test_mse"] = run.fits[run.main].history[-1]["test_mse"]
        return metrics

    def results(self, run):
        return {"best_optimizer": run.main,
                "diverged": {name: part.stopped for name, part in run.parts.items() if part.stopped}}

    def figures(self, run, folder):
        fits = run.fits
        fig = new_figure(9, 4)
        ax = fig.add_subplot(1, 2, 1)
        steps = np.arange(1, max(len(fit.step_losses) for fit in fits.values()) + 1)
        for name, fit in fits.items():
            ax.plot(steps[:len(fit.step_losses)], fit.step_losses, label=name, lw=1,
                    marker=marker_for(len(steps)), ms=3)
        ax.set(xlabel="step", ylabel="training MSE (batch)", ylim=(0, 0.2), title="loss per step")
        whole_number_ticks(ax, steps)
        ax.legend()
        ax = fig.add_subplot(1, 2, 2)
        rows = [row for fit in fits.values() for row in fit.history]
        for name, fit in fits.items():
            ax.plot([r["epoch"] for r in fit.history], [r["test_mse"] for r in fit.history], marker="o", ms=3,
                    label=name)
        ax.set(xlabel="epoch", ylabel="held-out MSE", title="held-out MSE per epoch")
        whole_number_ticks(ax, [row["epoch"] for row in rows])
        log_scale_if_wide(ax, [row["test_mse"] for row in rows], span=3)  # log as the optimizers draw apart
        ax.legend()
        save(fig, folder / "loss.png")

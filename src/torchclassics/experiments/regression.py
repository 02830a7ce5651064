"""Curve fitting: a 1 -> 10 -> 1 ReLU net learns y = x^2 + noise (the tutorial series' "regression")."""
from __future__ import annotations

import torch
from torch import nn

from ..data.batches import TensorBatches
from ..data.synthetic import parabola
from ..engine.loop import Task
from ..models.mlp import Net
from ..registry import experiment
from ..viz.animate import animate
from ..viz.plots import new_figure, save
from ._base import Experiment, draw_loss, every_nth_epoch, frames_every


@experiment("regression")
class Regression(Experiment):
    objective = ("test_mse", "min")

    def build(self, params, device):
        x, y = parabola(params["n_points"], params["seed"], params["noise"])
        # Held-out points: the same curve at fresh random x, with fresh noise.
        g = torch.Generator().manual_seed(params["seed"] + 1)
        x_test = torch.rand(params["n_points"], 1, generator=g) * 2 - 1
        y_test = x_test.pow(2) + params["noise"] * torch.rand(x_test.shape, generator=g)
        batch = params["batch_size"] or len(x)
        x_on_device = x.to(device)
        self.x, self.y = x, y
        return Task(
            model=Net(1, params["hidden"], 1),
            train=TensorBatches(x, y, batch_size=batch, shuffle=True, seed=params["seed"], device=device),
            test=TensorBatches(x_test, y_test, batch_size=len(x_test), shuffle=False, device=device),
            loss_fn=nn.MSELoss(),
            loss_name="mse",
            on_epoch_end=frames_every(every_nth_epoch(params), lambda model: {"y": model(x_on_device).flatten().cpu()}),
        )

    def figures(self, task, fit, trainer, figures_dir):
        x, y = self.x.flatten().numpy(), self.y.flatten().numpy()
        frames = task.record.get("frames", [])

        def draw(ax, frame):
            ax.scatter(x, y, s=10, c="tab:blue", label="data")
            ax.plot(x, frame["y"].numpy(), "r-", lw=3, label="net")
            mse = float(((frame["y"] - self.y.flatten()) ** 2).mean())
            ax.set(title=f"epoch {frame['epoch']}   MSE {mse:.4f}", ylim=(-0.2, 1.4))
            ax.legend(loc="upper center")

        if frames:
            fig = new_figure(5, 4)
            draw(fig.add_subplot(1, 1, 1), frames[-1])
            save(fig, figures_dir / "fit.png")
            animate(frames, draw, figures_dir / "animation.gif")
        draw_loss(task, fit, figures_dir / "loss.png", "regression: MSE")

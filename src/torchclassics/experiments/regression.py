"""Curve fitting: a 1 -> 10 -> 1 ReLU net learns y = x^2 + noise (the tutorial series' "regression")."""
from __future__ import annotations

import torch
from torch import nn

from ..data.batches import TensorBatches
from ..data.synthetic import parabola
from ..engine.loop import Task
from ..models.mlp import Net
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.animate import FrameWriter
from ._base import Experiment, draw_loss
from .frames import every_nth_epoch, frames_every


@experiment("regression")
class Regression(Experiment):
    objective = Objective("test_mse", "min")

    def build(self, params, device):
        x, y = parabola(params["n_points"], params["seed"], params["noise"])
        # Held-out points: the same curve at fresh random x, with fresh noise.
        g = torch.Generator().manual_seed(params["seed"] + 1)
        x_test = torch.rand(params["n_points"], 1, generator=g) * 2 - 1
        y_test = x_test.pow(2) + params["noise"] * torch.rand(x_test.shape, generator=g)
        batch = params["batch_size"] or len(x)
        x_on_device = x.to(device)
        return Task(
            model=Net(1, params["hidden"], 1),
            train=TensorBatches(x, y, batch_size=batch, shuffle=True, seed=params["seed"], device=device),
            test=TensorBatches(x_test, y_test, batch_size=len(x_test), shuffle=False, device=device),
            loss_fn=nn.MSELoss(),
            loss_name="mse",
            on_epoch_end=frames_every(every_nth_epoch(params), lambda model: {"y": model(x_on_device).flatten().cpu()}),
            context={"x": x, "y": y},
        )

    def figures(self, run, folder):
        frames = run.task.record.get("frames", [])
        if frames:
            fit_animation(run.task.context["x"], run.task.context["y"], frames, folder)
        draw_loss(run, folder / "loss.png", "regression: MSE")


def fit_animation(x: torch.Tensor, y: torch.Tensor, frames: list[dict], figures_dir) -> None:
    """The net's curve over the data at every frame (animation.gif); the last is fit.png.
    The data, axes and legend are drawn once: a frame redraws the curve and the title."""
    target = y.flatten()
    x, y = x.flatten().numpy(), target.numpy()
    writer = FrameWriter((5, 4))
    ax = writer.figure.add_subplot(1, 1, 1)
    ax.scatter(x, y, s=10, c="tab:blue", label="data")
    (net,) = ax.plot(x, frames[0]["y"].numpy(), "r-", lw=3, label="net")
    ax.set(xlabel="x", ylabel="y", ylim=(-0.2, 1.4))
    ax.legend(loc="upper center")
    writer.changing(net, ax.title)
    for frame in frames:
        net.set_ydata(frame["y"].numpy())
        mse = float(((frame["y"] - target) ** 2).mean())
        ax.set_title(f"epoch {frame['epoch']}   MSE {mse:.4f}")
        writer.grab()
    writer.write_last(figures_dir / "fit.png")
    writer.write(figures_dir / "animation.gif")

"""An RNN reads sin(t) and predicts cos(t), window after window (the tutorial series' "RNN regression").

The hidden state is carried from one window to the next and detached in between
(truncated back-propagation through time): that carried state is what tells the net
on which side of the curve it is, since sin alone does not fix the sign of cos."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.batches import TensorBatches
from ..data.synthetic import sin_cos_windows
from ..engine.loop import Task
from ..models.rnn import SinCosRNN
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.animate import FrameWriter
from ._base import Experiment, draw_loss
from .frames import every_nth_epoch, frames_every


def rnn_forward(model, inputs, state):
    return model(inputs, state)


@torch.no_grad()
def predict_sequence(model, data: TensorBatches) -> torch.Tensor:
    """The model's output over consecutive windows, state carried, flattened in time."""
    model.eval()
    outputs, state = [], None
    for inputs, _ in data.epoch(0):
        prediction, state = model(inputs, state)
        outputs.append(prediction.flatten().cpu())
    return torch.cat(outputs)


@experiment("rnn_sincos")
class RnnSinCos(Experiment):
    objective = Objective("test_mse", "min")

    def build(self, params, device):
        steps, n_train = params["time_steps"], params["train_windows"]
        x, y, t = sin_cos_windows(n_train, steps)
        x_test, y_test, t_test = sin_cos_windows(params["test_windows"], steps, start_window=n_train)
        # Windows follow each other in time: no shuffling, one window per step as in the tutorial.
        test = TensorBatches(x_test, y_test, batch_size=params["batch_size"], shuffle=False, device=device)
        return Task(
            model=SinCosRNN(params["hidden"]),
            train=TensorBatches(x, y, batch_size=params["batch_size"], shuffle=False, device=device),
            test=test,
            loss_fn=nn.MSELoss(),
            loss_name="mse",
            forward=rnn_forward,
            carry_state=True,
            on_epoch_end=frames_every(every_nth_epoch(params), lambda model: {"y": predict_sequence(model, test)}),
            context={"t_test": t_test.flatten(), "y_test": y_test.flatten()},
        )

    def figures(self, run, folder):
        task, fit = run.task, run.fit
        frames = task.record.get("frames", [])
        if frames:
            final = {"epoch": fit.history[-1]["epoch"], "y": predict_sequence(task.model, task.test)}
            if frames[-1]["epoch"] != final["epoch"]:  # the GIF ends on the trained net, prediction.png's
                frames = [*frames, final]
            prediction_animation(task.context, frames, run.params["time_steps"], folder)
        draw_loss(run, folder / "loss.png", "rnn_sincos: MSE")


def prediction_animation(data: dict, frames: list[dict], time_steps: int, figures_dir) -> None:
    """The RNN's output over the first ten held-out windows at every frame (animation.gif);
    the last frame is prediction.png. Input, target and legend are drawn once."""
    t, target = data["t_test"].numpy(), data["y_test"].numpy()
    shown = slice(0, 10 * time_steps)
    writer = FrameWriter((8, 3.5))
    ax = writer.figure.add_subplot(1, 1, 1)
    ax.plot(t[shown], np.sin(t[shown]), "b:", lw=1, label="input sin(t)")
    ax.plot(t[shown], target[shown], "r-", label="target cos(t)")
    (rnn,) = ax.plot(t[shown], frames[-1]["y"].numpy()[shown], "k--", label="RNN")
    ax.set(xlabel="t", ylabel="value", ylim=(-1.3, 1.6))
    ax.legend(loc="upper right", ncol=3, fontsize=8)
    writer.changing(rnn, ax.title)
    for frame in frames:
        rnn.set_ydata(frame["y"].numpy()[shown])
        mse = float(((frame["y"] - data["y_test"]) ** 2).mean())
        ax.set_title(f"epoch {frame['epoch']}   held-out MSE {mse:.4f}")
        writer.grab()
    writer.write_last(figures_dir / "prediction.png")
    writer.write(figures_dir / "animation.gif")

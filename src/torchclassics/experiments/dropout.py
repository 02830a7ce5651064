"""Overfitting and dropout: two 1 -> 300 -> 300 -> 1 ReLU nets on 20 noisy points of a line,
one with Dropout(0.5) after each hidden layer (the tutorial series' dropout lesson,
503_dropout.py).

Both nets start from the same weights and take their steps side by side, on the same
batches, as the lesson's loop does: one Task with two models and its own step. One
checkpoint then holds both nets, both optimizers and the random generator that draws the
dropout masks, so a resumed run draws the masks the uninterrupted run draws; one row per
epoch holds both nets' losses, and one hook records both fits for the GIF. The dropout
net is the run's model (best.pt, evaluate, export)."""
from __future__ import annotations

import torch
from torch import nn

from ..data.batches import TensorBatches
from ..data.noisy_curves import noisy_line
from ..engine.loop import Task, evaluate_task
from ..models.regularized import dropout_net
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.animate import FrameWriter
from ..viz.plots import log_scale_if_wide, marker_for, new_figure, save, whole_number_ticks
from ._base import Experiment
from .frames import every_nth_epoch

NETS = ("plain", "dropout")
STYLE = {"plain": ("tab:red", "-", "without dropout"), "dropout": ("tab:blue", "--", "dropout")}


def train_both(trainer, inputs, targets):
    """The lesson's step, once per net on the same batch: zero_grad, forward, MSE, backward, step."""
    losses = {}
    for name in NETS:
        optimizer = trainer.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        with trainer.precision.autocast():
            loss = trainer.task.loss_fn(trainer.wrapped[name](inputs), targets)
        trainer.precision.backward(loss)
        trainer.clip(name)
        trainer.precision.step(optimizer)
        losses[f"mse_{name}"] = loss
    return losses, None


def held_out_both(trainer):
    """Each net's held-out MSE in eval mode (dropout off: every unit, no rescaling)."""
    return {f"test_mse_{name}": evaluate_task(trainer.task, trainer.models[name], trainer.device)["test_mse"]
            for name in NETS}


def fits_every(every: int, nets: dict[str, nn.Module], grid: torch.Tensor):
    """An on_epoch_end hook keeping both nets' curves on ``grid`` (eval mode) at epoch 1 and
    every ``every`` epochs: the frames of the GIF."""

    def on_epoch_end(epoch, model, record):
        if epoch % every == 0 or epoch == 1:
            frame = {"epoch": epoch}
            with torch.no_grad():
                for name, net in nets.items():
                    net.eval()  # the next epoch's train_epoch switches them back
                    frame[name] = net(grid).flatten().cpu()
            record.setdefault("frames", []).append(frame)

    return on_epoch_end


@experiment("dropout")
class Dropout(Experiment):
    objective = Objective("test_mse_dropout", "min")

    def build(self, params, device):
        x, y, x_test, y_test = noisy_line(params["n_points"], params["n_test"], params["noise"], params["seed"])
        plain = dropout_net(params["hidden"], 0.0)
        dropped = dropout_net(params["hidden"], params["dropout"])
        dropped.load_state_dict(plain.state_dict())  # the same start: the nets differ by dropout alone
        grid = torch.linspace(-1, 1, 200).unsqueeze(1)
        nets = {"plain": plain, "dropout": dropped}
        return Task(
            model=dropped,
            models=nets,
            train=TensorBatches(x, y, batch_size=params["batch_size"] or len(x), shuffle=True,
                                seed=params["seed"], device=device),
            test=TensorBatches(x_test, y_test, batch_size=len(x_test), shuffle=False, device=device),
            loss_fn=nn.MSELoss(),
            loss_name="mse",
            step=train_both,
            evaluate=held_out_both,
            on_epoch_end=fits_every(every_nth_epoch(params), nets, grid.to(device)),
            context={"x": x, "y": y, "x_test": x_test, "y_test": y_test, "grid": grid},
        )

    def figures(self, run, folder):
        frames = run.task.record.get("frames", [])
        history = run.fit.history
        if frames:
            fits_animation(run.task.context, frames, {row["epoch"]: row for row in history}, folder)
        draw_losses(history, folder / "loss.png")


def fits_animation(data: dict, frames: list[dict], rows: dict, figures_dir) -> None:
    """Training and held-out points and both nets' curves at every frame (animation.gif),
    each net's held-out MSE in the legend; the last frame is fit.png. The points and axes
    are drawn once; a frame redraws the curves, the title and the legend."""
    writer = FrameWriter((6, 4.5))
    ax = writer.figure.add_subplot(1, 1, 1)
    ax.scatter(data["x_test"].flatten(), data["y_test"].flatten(), s=12, c="cyan", alpha=0.5, label="held-out")
    ax.scatter(data["x"].flatten(), data["y"].flatten(), s=40, c="magenta", alpha=0.8, label="train")
    curves = {}
    for name in NETS:
        colour, line, label = STYLE[name]
        (curves[name],) = ax.plot(data["grid"].flatten(), frames[0][name], color=colour, ls=line, lw=2.5, label=label)
    ax.set(xlabel="x", ylabel="y", ylim=(-2.5, 2.5))
    legend = ax.legend(loc="upper left", fontsize=8)
    names = legend.get_texts()[-len(NETS):]  # the curves' entries, after the two scatters'
    writer.changing(*curves.values(), ax.title, legend)
    for frame in frames:
        row = rows.get(frame["epoch"], {})
        for name, text in zip(NETS, names):
            curves[name].set_ydata(frame[name])
            text.set_text(f"{STYLE[name][2]}: held-out MSE {row.get(f'test_mse_{name}', float('nan')):.4f}")
        ax.set_title(f"epoch {frame['epoch']}")
        writer.grab()
    writer.write_last(figures_dir / "fit.png")
    writer.write(figures_dir / "animation.gif")


def draw_losses(history: list[dict], path):
    """Training and held-out MSE per epoch of both nets. The dropout net's training MSE is
    the one its steps see: with dropout on."""
    epochs = [row["epoch"] for row in history]
    fig = new_figure(7, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    values = []
    for name in NETS:
        colour, _, label = STYLE[name]
        for key, line, kind in ((f"mse_{name}", ":", "train"), (f"test_mse_{name}", "-", "held-out")):
            values += [row[key] for row in history]
            ax.plot(epochs, [row[key] for row in history], color=colour, ls=line, marker=marker_for(len(epochs)),
                    ms=3, label=f"{label}: {kind}")
    ax.set(xlabel="epoch", ylabel="MSE", title="training and held-out MSE")
    log_scale_if_wide(ax, values)
    whole_number_ticks(ax, epochs)
    ax.legend()
    save(fig, path)

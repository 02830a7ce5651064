"""Batch normalization: a deep net (8 hidden layers of 10 units, a bad bias of -0.2) fits
y = x^2 - 5 + noise on inputs far from zero, with and without BatchNorm1d, for tanh and
ReLU (the tutorial series' batch-normalization lesson, 504_batch_normalization.py).

One sub-run per net, as in the optimizers experiment: each net trains with the lesson's
own step, because a BatchNorm1d layer needs nothing else. What it needs is the switch the
engine makes anyway: ``model.train()`` while training (normalize by the batch's mean and
variance, and update the running estimates), ``model.eval()`` when evaluating (normalize by
the running estimates). For each activation the nets with and without batch normalization
start from the same Linear weights, and every net sees the same batches in the same order."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..core.errors import UserError
from ..data.batches import TensorBatches
from ..data.noisy_curves import shifted_parabola
from ..engine.loop import Task
from ..models.regularized import DeepNet
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.animate import FrameWriter
from ..viz.plots import log_scale_if_wide, marker_for, new_figure, save
from ._base import Experiment, Part, lowest_final
from .frames import every_nth_epoch, frames_every

COLOURS = {"plain": "#FF9359", "bn": "#3A8FD9"}
LINES = {"tanh": "-", "relu": "--", "sigmoid": ":"}


def net_names(params: dict) -> list[str]:
    """``tanh_plain``, ``tanh_bn``, ``relu_plain``, ``relu_bn``: the sub-runs' tags."""
    return [f"{activation}_{kind}" for activation in params["activations"] for kind in ("plain", "bn")]


def full_batch_pre_activations(net: DeepNet, x: torch.Tensor, normalized: bool = True) -> list[torch.Tensor]:
    """Each layer's pre-activations (see DeepNet.pre_activations) for the whole training set
    normalized as one batch (train mode), on a copy: the net's running statistics stay as they are."""
    twin = copy.deepcopy(net).train()
    with torch.no_grad():
        return [z.cpu() for z in twin.pre_activations(x, normalized)]


def running_statistics(net: DeepNet) -> dict:
    """The mean and variance each BatchNorm1d layer uses in eval mode, per unit."""
    return {name: {"mean": [round(v, 4) for v in bn.running_mean.tolist()],
                   "var": [round(v, 4) for v in bn.running_var.tolist()]}
            for name, bn in net.batch_norms().items()}


def held_out_with_whole_set_statistics(net: DeepNet, x_train, x_test, y_test) -> float:
    """Held-out MSE in eval mode once the running statistics are recomputed from the whole
    training set with the final weights (on a copy): what exact statistics would score."""
    twin = copy.deepcopy(net)
    for bn in twin.batch_norms().values():
        bn.reset_running_stats()
        bn.momentum = None  # a plain average of the batches seen: here the one whole-set batch
    with torch.no_grad():
        twin.train()(x_train)
        return float(nn.functional.mse_loss(twin.eval()(x_test), y_test))


def task_for(data: dict, params: dict, name: str) -> Task:
    """The Task of one net: the shared batches, its own frames of the held-out curve."""
    x_test = data["test"].tensors[0]
    return Task(model=data["nets"][name], train=data["train"], test=data["test"], loss_fn=nn.MSELoss(), loss_name="mse",
                on_epoch_end=frames_every(every_nth_epoch(params), lambda model: {"y": model(x_test).flatten().cpu()}),
                context=data)


@experiment("batchnorm")
class BatchNorm(Experiment):
    objective = Objective("test_mse", "min")
    part_label = "net"
    main_part = lowest_final("test_mse")  # the net with the lowest final held-out MSE

    def build(self, params, device):
        low, high = params["x_range"]
        if not low < high:
            raise UserError(f"x_range={params['x_range']}: the first number must be below the second.")
        if params["drop_last"] and params["n_points"] < params["batch_size"]:
            raise UserError(f"n_points={params['n_points']} < batch_size={params['batch_size']} with drop_last=true: "
                            "no batch would be left; lower batch_size or set drop_last=false.")
        x, y, x_test, y_test = shifted_parabola(params["n_points"], params["n_test"], low, high, params["noise"],
                                                params["seed"])
        nets = {}
        for name in net_names(params):
            activation, kind = name.rsplit("_", 1)
            torch.manual_seed(params["seed"])  # the same Linear weights with and without batch normalization
            nets[name] = DeepNet(params["layers"], params["hidden"], activation, kind == "bn",
                                 params["bn_momentum"], params["weight_std"], params["bias_init"]).to(device)
        x_train = x.to(device)
        data = {"nets": nets, "x_train": x_train, "x_test": x_test, "y_test": y_test,
                "train": TensorBatches(x, y, batch_size=params["batch_size"], shuffle=True, seed=params["seed"],
                                       drop_last=params["drop_last"], device=device),
                "test": TensorBatches(x_test, y_test, batch_size=len(x_test), shuffle=False, device=device),
                # the histograms' "start": the nets as built, before any training or checkpoint
                "start": {name: full_batch_pre_activations(net, x_train) for name, net in nets.items()}}
        return task_for(data, params, net_names(params)[0])

    def parts(self, task, params):
        return {name: Part(task_for(task.context, params, name), params) for name in net_names(params)}

    def final_metrics(self, run):
        metrics = {}
        for name, fit in run.fits.items():
            metrics[f"mse_{name}"] = fit.history[-1]["mse"]
            metrics[f"test_mse_{name}"] = fit.history[-1]["test_mse"]
        metrics["test_mse"] = run.fits[run.main].history[-1]["test_mse"]
        return metrics

    def results(self, run):
        """The best net, and what each batch-normalized net uses at test time: its running
        mean and variance per layer and unit (the input's true mean and variance beside), and
        the held-out MSE it would score with statistics of the whole training set instead."""
        data = run.task.context
        x = data["x_train"].flatten()
        normalized = {name: net for name, net in data["nets"].items() if net.batch_norms()}
        x_test, y_test = data["test"].tensors
        return {"best_net": run.main,
                "running_statistics": {name: running_statistics(net) for name, net in normalized.items()},
                "input_statistics": {"mean": round(float(x.mean()), 4), "var": round(float(x.var()), 4)},
                "test_mse_with_whole_set_statistics": {
                    name: held_out_with_whole_set_statistics(net, data["x_train"], x_test, y_test)
                    for name, net in normalized.items()}}

    # -- figures ---------------------------------------------------------------------------------
    def figures(self, run, folder):
        data = run.task.context
        draw_losses(run.params["activations"], run.fits, folder / "loss.png")
        end = {name: full_batch_pre_activations(net, data["x_train"]) for name, net in data["nets"].items()}
        draw_histograms(data["start"], end, folder / "histograms.png")
        draw_running_statistics(data["nets"], data["x_train"], folder / "running_stats.png")
        records = [part.task.record.get("frames", []) for part in run.parts.values()]
        frames = [dict(zip(run.parts, group)) for group in zip(*records)]
        if frames:
            fits_animation(data["x_test"], data["y_test"], frames, folder)


def style_of(name: str) -> dict:
    activation, kind = name.rsplit("_", 1)
    label = f"{activation}, {'batch norm' if kind == 'bn' else 'no batch norm'}"
    return {"color": COLOURS[kind], "ls": LINES[activation], "label": label}


def draw_losses(activations: list[str], fits: dict, path):
    """Held-out MSE per epoch (eval mode) and training MSE per step, one panel per activation."""
    fig = new_figure(5 * len(activations), 4)
    for i, activation in enumerate(activations):
        ax = fig.add_subplot(1, len(activations), i + 1)
        values = []
        for kind in ("plain", "bn"):
            name = f"{activation}_{kind}"
            fit, style = fits[name], style_of(name)
            steps_per_epoch = max(1, len(fit.step_losses) // max(1, len(fit.history)))
            epochs_of_steps = [(s + 1) / steps_per_epoch for s in range(len(fit.step_losses))]
            ax.plot(epochs_of_steps, fit.step_losses, color=style["color"], lw=0.6, alpha=0.4,
                    marker=marker_for(len(fit.step_losses)), ms=2, label=f"{style['label']}: train (batch)")
            ax.plot([r["epoch"] for r in fit.history], [r["test_mse"] for r in fit.history], color=style["color"],
                    lw=2.5, marker="o", ms=3, label=f"{style['label']}: held-out")
            values += [*fit.step_losses, *(r["test_mse"] for r in fit.history)]
        ax.set(xlabel="epoch", ylabel="MSE", title=f"{activation}: MSE")
        log_scale_if_wide(ax, values)
        ax.legend(fontsize=7)
    save(fig, path)


def draw_histograms(start: dict, end: dict, path):
    """One row per net, one column per layer: the values each activation function receives,
    at the start (grey) and the end (colour) of training."""
    names = list(start)
    layers = len(start[names[0]])
    fig = new_figure(1.35 * layers + 1, 1.3 * len(names) + 0.8)
    for row, name in enumerate(names):
        style = style_of(name)
        for col in range(layers):
            ax = fig.add_subplot(len(names), layers, row * layers + col + 1)
            first, last = start[name][col].flatten(), end[name][col].flatten()
            low, high = float(torch.minimum(first.min(), last.min())), float(torch.maximum(first.max(), last.max()))
            bins = torch.linspace(low, max(high, low + 1e-3), 21).numpy()
            ax.hist(first.numpy(), bins=bins, color="grey", alpha=0.5, label="start of training")
            ax.hist(last.numpy(), bins=bins, color=style["color"], alpha=0.6, label="end of training")
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
            if row == 0:
                ax.set_title("input" if col == 0 else f"layer {col}", fontsize=8)
            if col == 0:
                ax.set_ylabel(style["label"].replace(", ", "\n"), fontsize=7)
            if row == len(names) - 1:
                ax.set_xlabel("value", fontsize=7)
            if row == 0 and col == 0:
                ax.legend(fontsize=5, loc="upper left")
    fig.suptitle("what each activation function receives (whole training set as one batch)", fontsize=9)
    save(fig, path)


def draw_running_statistics(nets: dict, x_train: torch.Tensor, path):
    """Eval mode's running mean and variance of every normalized unit against the batch
    statistics of the whole training set: the estimates batch normalization keeps for test time."""
    fig = new_figure(9, 4)
    axes = {"mean": fig.add_subplot(1, 2, 1), "var": fig.add_subplot(1, 2, 2)}
    for name, net in nets.items():
        if not net.batch_norms():
            continue
        inputs = full_batch_pre_activations(net, x_train, normalized=False)
        for what, ax in axes.items():
            truth, kept = [], []
            for bn, values in zip(net.batch_norms().values(), inputs):
                truth += (values.mean(0) if what == "mean" else values.var(0, unbiased=True)).tolist()
                kept += (bn.running_mean if what == "mean" else bn.running_var).cpu().tolist()
            style = style_of(name)
            ax.scatter(truth, kept, s=12, color=style["color"], marker="o" if "tanh" in name else "^",
                       label=style["label"])
    for what, ax in axes.items():
        if what == "var":  # before the limits are read: the diagonal then spans the log axes
            ax.set(xscale="log", yscale="log")
        low, high = ax.get_xlim()
        ax.plot([low, high], [low, high], color="black", lw=0.8, label="equal")
        ax.set(xlabel=f"{what} over the whole training set", ylabel=f"running {what} (used in eval mode)",
               title=f"running {what} per unit")
        ax.legend(fontsize=7)
    save(fig, path)


def fits_animation(x_test: torch.Tensor, y_test: torch.Tensor, frames: list[dict], figures_dir) -> None:
    """The held-out points and every net's prediction (eval mode) after each recorded epoch
    (animation.gif); the last frame is fit.png. The points, axes and legend are drawn once;
    a frame redraws the curves and the title."""
    writer = FrameWriter((6, 4.5))
    ax = writer.figure.add_subplot(1, 1, 1)
    x = x_test.flatten()
    ax.scatter(x, y_test.flatten(), s=10, c="grey", alpha=0.4, label="held-out data")
    curves = {name: ax.plot(x, item["y"], lw=2, **style_of(name))[0] for name, item in frames[0].items()}
    shown = torch.cat([y_test.flatten(), *(item["y"] for frame in frames for item in frame.values())])
    low, high = float(shown.min()), float(shown.max())
    pad = 0.05 * (high - low) + 1e-6
    ax.set(xlabel="x", ylabel="y", ylim=(low - pad, high + pad))  # every frame's curves in view
    ax.legend(fontsize=7, loc="upper center")
    writer.changing(*curves.values(), ax.title)
    for frame in frames:
        for name, item in frame.items():
            curves[name].set_ydata(item["y"])
        ax.set_title(f"epoch {next(iter(frame.values()))['epoch']} (eval mode)")
        writer.grab()
    writer.write_last(figures_dir / "fit.png")
    writer.write(figures_dir / "animation.gif")

"""A linear layer two ways on the book's 17-point toy data: by hand, and with nn.Linear + SGD
("Deep Learning with PyTorch", chapter 3)."""
from __future__ import annotations

import torch
from torch import nn

from ..data.batches import TensorBatches
from ..data.synthetic import toy_line
from ..engine.loop import Task
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.plots import new_figure, save
from ._base import Experiment, draw_loss


def fit_by_hand(x: torch.Tensor, y: torch.Tensor, lr: float, epochs: int, start: nn.Linear) -> dict:
    """The lesson itself: tensors w and b with requires_grad, the loss, backward, and
    the update written out (what an optimizer's step does for plain SGD).

    w and b start from ``start``'s initial weights, so this fit and the nn.Linear + SGD fit
    take the same steps and end on the same line (up to float rounding)."""
    w = start.weight.detach().t().clone().requires_grad_()  # (1, 1): x @ w is nn.Linear's x @ W^T
    b = start.bias.detach().clone().requires_grad_()
    losses = []
    for _ in range(epochs):
        y_pred = x @ w + b
        loss = ((y - y_pred) ** 2).mean()
        loss.backward()
        with torch.no_grad():  # the update must not itself be recorded by autograd
            w -= lr * w.grad
            b -= lr * b.grad
            w.grad.zero_()
            b.grad.zero_()
        losses.append(loss.item())
    # "mse" is the last epoch's loss before its update, as the engine logs an epoch.
    return {"w": w.item(), "b": b.item(), "mse": losses[-1] if losses else float("nan"), "losses": losses}


def least_squares(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """The exact answer both fits walk towards: (w, b, mse)."""
    design = torch.cat([x, torch.ones_like(x)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution
    w, b = float(solution[0]), float(solution[1])
    return w, b, float(((y - (x * w + b)) ** 2).mean())


@experiment("linear")
class Linear(Experiment):
    objective = Objective("mse", "min")

    def build(self, params, device):
        x, y = toy_line()
        layer = nn.Linear(1, 1)
        return Task(
            model=layer,
            train=TensorBatches(x, y, batch_size=len(x), shuffle=False, device=device),
            test=None,
            loss_fn=nn.MSELoss(),
            loss_name="mse",
            # the same lesson by hand, from the layer's initial weights: checkpointed with the run
            record={"by_hand": fit_by_hand(x, y, params["lr"], params["epochs"], layer)},
            context={"x": x, "y": y},
        )

    def final_metrics(self, run):
        x, y = run.task.context["x"], run.task.context["y"]
        w, b, mse = least_squares(x, y)
        layer, by_hand, history = run.model, run.task.record["by_hand"], run.fit.history
        return {
            "mse": history[-1]["mse"] if history else float("nan"),
            "linear_w": layer.weight.item(), "linear_b": layer.bias.item(),
            "by_hand_mse": by_hand["mse"], "by_hand_w": by_hand["w"], "by_hand_b": by_hand["b"],
            "least_squares_mse": mse, "least_squares_w": w, "least_squares_b": b,
        }

    def figures(self, run, folder):
        data, by_hand = run.task.context, run.task.record["by_hand"]
        x, y = data["x"].flatten(), data["y"].flatten()
        line = torch.linspace(float(x.min()), float(x.max()), 2)
        layer = run.model.cpu()
        fig = new_figure(6, 4.5)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(x, y, "ro", label="data")
        ax.plot(line, line * by_hand["w"] + by_hand["b"], "b-", label="by hand")
        with torch.no_grad():
            ax.plot(line, layer(line.unsqueeze(1)).flatten(), "g--", label="nn.Linear + SGD")
        w, b, _ = least_squares(data["x"], data["y"])
        ax.plot(line, line * w + b, "k:", label="least squares")
        ax.set(xlabel="x", ylabel="y", title="a linear layer, two ways")
        ax.legend()
        save(fig, folder / "fit.png")
        draw_loss(run, folder / "loss.png", "nn.Linear: MSE")

"""Two Gaussian clusters told apart by a 2 -> 10 -> 2 ReLU net (the tutorial series' "classification")."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.batches import TensorBatches
from ..data.synthetic import two_clusters
from ..engine.loop import Task, accuracy_sum
from ..models.mlp import Net
from ..registry import experiment
from ..viz.animate import animate
from ..viz.plots import new_figure, save
from ._base import Experiment, draw_loss, every_nth_epoch, frames_every

GRID_STEPS = 80


def decision_grid(x: torch.Tensor, margin: float = 1.0) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """A mesh covering the points, for drawing the decision regions."""
    lo, hi = x.min(0).values - margin, x.max(0).values + margin
    xs = np.linspace(lo[0].item(), hi[0].item(), GRID_STEPS, dtype=np.float32)
    ys = np.linspace(lo[1].item(), hi[1].item(), GRID_STEPS, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    return gx, gy, torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1))


def decisions(x: torch.Tensor, grid: torch.Tensor):
    """The predicted class of every point and of the mesh (one GIF frame)."""
    return lambda model: {"points": model(x).argmax(1).cpu().to(torch.uint8),
                          "regions": model(grid).argmax(1).cpu().to(torch.uint8)}


@experiment("classification")
class Classification(Experiment):
    objective = ("test_accuracy", "max")

    def build(self, params, device):
        x, y = two_clusters(params["n_per_class"], params["seed"], params["centre"])
        x_test, y_test = two_clusters(params["n_per_class"], params["seed"] + 1, params["centre"])
        self.x, self.y = x, y
        self.gx, self.gy, grid = decision_grid(x)
        return Task(
            model=Net(2, params["hidden"], 2),
            train=TensorBatches(x, y, batch_size=params["batch_size"] or len(x), shuffle=True,
                                seed=params["seed"], device=device),
            test=TensorBatches(x_test, y_test, batch_size=len(x_test), shuffle=False, device=device),
            loss_fn=nn.CrossEntropyLoss(),
            metrics={"accuracy": accuracy_sum},
            on_epoch_end=frames_every(every_nth_epoch(params), decisions(x.to(device), grid.to(device))),
            monitor="test_accuracy",
            mode="max",
        )

    def figures(self, task, fit, trainer, figures_dir):
        x, y = self.x.numpy(), self.y.numpy()
        frames = task.record.get("frames", [])

        def draw(ax, frame):
            regions = frame["regions"].numpy().reshape(self.gx.shape)
            ax.contourf(self.gx, self.gy, regions, levels=[-0.5, 0.5, 1.5], colors=["#ffd9b3", "#b3d9ff"], alpha=0.8)
            predicted = frame["points"].numpy()
            ax.scatter(x[:, 0], x[:, 1], c=predicted, cmap="RdYlBu", s=14, edgecolors="k", linewidths=0.3)
            accuracy = float((predicted == y).mean())
            ax.set(title=f"epoch {frame['epoch']}   accuracy {accuracy:.2f}")

        if frames:
            fig = new_figure(5, 4.5)
            draw(fig.add_subplot(1, 1, 1), frames[-1])
            save(fig, figures_dir / "decision_regions.png")
            animate(frames, draw, figures_dir / "animation.gif", size=(5, 4.5))
        draw_loss(task, fit, figures_dir / "loss.png", "classification: cross-entropy")

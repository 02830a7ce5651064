"""Two Gaussian clusters told apart by a 2 -> 10 -> 2 ReLU net (the tutorial series' "classification")."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from torch import nn

from ..data.batches import TensorBatches
from ..data.synthetic import two_clusters
from ..engine.loop import Task, accuracy_sum
from ..models.mlp import Net
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.animate import FrameWriter
from ._base import Experiment, draw_loss
from .frames import every_nth_epoch, frames_every

GRID_STEPS = 80
REGION_COLOURS = ("#ffd9b3", "#b3d9ff")  # class 0, class 1: light, under the points
POINT_COLOURS = ("#d7301f", "#2c7bb6")


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
    objective = Objective("test_accuracy", "max")

    def build(self, params, device):
        x, y = two_clusters(params["n_per_class"], params["seed"], params["centre"])
        x_test, y_test = two_clusters(params["n_per_class"], params["seed"] + 1, params["centre"])
        gx, gy, grid = decision_grid(x)
        return Task(
            model=Net(2, params["hidden"], 2),
            train=TensorBatches(x, y, batch_size=params["batch_size"] or len(x), shuffle=True,
                                seed=params["seed"], device=device),
            test=TensorBatches(x_test, y_test, batch_size=len(x_test), shuffle=False, device=device),
            loss_fn=nn.CrossEntropyLoss(),
            metrics={"accuracy": accuracy_sum},
            on_epoch_end=frames_every(every_nth_epoch(params), decisions(x.to(device), grid.to(device))),
            context={"x": x, "y": y, "gx": gx, "gy": gy},
        )

    def figures(self, run, folder):
        frames = run.task.record.get("frames", [])
        if frames:
            regions_animation(run.task.context, frames, folder)
        draw_loss(run, folder / "loss.png", "classification: cross-entropy")


def regions_animation(data: dict, frames: list[dict], figures_dir) -> None:
    """The decision regions and the points' predicted classes at every frame
    (animation.gif); the last frame is decision_regions.png. The regions are an image and
    the points one scatter, updated in place: the axes and legend are drawn once."""
    x, y, gx, gy = data["x"].numpy(), data["y"].numpy(), data["gx"], data["gy"]
    writer = FrameWriter((6.8, 4.5))
    ax = writer.figure.add_subplot(1, 1, 1)
    extent = (gx.min(), gx.max(), gy.min(), gy.max())
    regions = ax.imshow(frames[0]["regions"].numpy().reshape(gx.shape), origin="lower", extent=extent,
                        cmap=ListedColormap(REGION_COLOURS), vmin=0, vmax=1, aspect="auto",
                        interpolation="bilinear", interpolation_stage="data")  # smooth borders at 0.5
    points = ax.scatter(x[:, 0], x[:, 1], c=frames[0]["points"].numpy(), cmap=ListedColormap(POINT_COLOURS),
                        vmin=0, vmax=1, s=14, edgecolors="k", linewidths=0.3)
    ax.set(xlabel="x1", ylabel="x2")
    # Beside the axes, not on the regions: a legend redrawn in every frame would cost half the time.
    ax.legend(handles=legend_handles(), loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    writer.changing(regions, points, ax.title)
    for frame in frames:
        regions.set_data(frame["regions"].numpy().reshape(gx.shape))
        predicted = frame["points"].numpy()
        points.set_array(predicted)
        ax.set_title(f"epoch {frame['epoch']}   accuracy {float((predicted == y).mean()):.2f}")
        writer.grab()
    writer.write_last(figures_dir / "decision_regions.png")
    writer.write(figures_dir / "animation.gif")


def legend_handles() -> list:
    """What the two colours of regions and of points mean."""
    handles = [Patch(color=REGION_COLOURS[k], label=f"region of class {k}") for k in (0, 1)]
    return handles + [Line2D([], [], ls="", marker="o", mfc=POINT_COLOURS[k], mec="k", mew=0.3,
                             label=f"point predicted {k}") for k in (0, 1)]

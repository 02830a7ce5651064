"""The MNIST autoencoder: 784 pixels -> 3 numbers -> 784 pixels (the tutorial series' "AutoEncoder")."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import mnist
from ..engine.loop import Task
from ..models.autoencoder import AutoEncoder
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.animate import FrameWriter
from ..viz.embed import codes_3d_figure
from ..viz.plots import draw_image_grid, mosaic, new_figure, save
from ._base import Experiment, draw_loss
from .frames import every_n_steps, steps_between_frames

DIGIT_GAP = 2  # pixels between two digits of the reconstructions' mosaic


def record_reconstructions(model: AutoEncoder, pixels: torch.Tensor, record: dict):
    """A step hook keeping the reconstructions of a few fixed test digits as uint8 (a GIF frame)."""

    def hook(step: int) -> None:
        with torch.no_grad():
            decoded = model(pixels)
        frame = decoded.mul(255).round_().to(torch.uint8)
        record.setdefault("frames", []).append({"step": step, "decoded": frame})

    return hook


def draw_digit_rows(ax, originals: np.ndarray, decoded: np.ndarray):
    """Originals (n, 28, 28) above their reconstructions, as one image with the rows named;
    returns that image (``set_data`` shows another frame's reconstructions)."""
    grid = draw_image_grid(ax, np.concatenate([originals, decoded]), len(originals), gap=DIGIT_GAP,
                           cmap="gray", vmin=0, vmax=255)
    for row, name in enumerate(("original", "decoded")):
        ax.text(-3, row * (28 + DIGIT_GAP) + 14, name, ha="right", va="center", fontsize=9)
    return grid


@experiment("autoencoder")
class Autoencoder(Experiment):
    objective = Objective("test_mse", "min")

    def model_alone(self, params, device, record):
        return Task(model=AutoEncoder(), train=None, test=None, loss_fn=nn.MSELoss(), loss_name="mse")

    def example_input(self, task):
        return torch.rand(2, 28 * 28, generator=torch.Generator().manual_seed(0))

    def build(self, params, device):
        data = mnist.load_mnist(params.get("data_root"), allow_download=params.get("download", True))
        model = AutoEncoder()
        shown = data.test_images[: params.get("shown_digits", 10)]
        record: dict = {}
        hook = record_reconstructions(model, mnist.to_unit(shown.to(device)), record)
        model.to(device)  # the hook runs the model on shown digits that already live on ``device``
        hook(0)  # the untrained net: the GIF's first frame
        train = mnist.batches(data.train_images, data.train_labels, params["batch_size"], shuffle=True,
                              seed=params["seed"], device=device, transform=mnist.reconstruct_batch)
        test = mnist.batches(data.test_images, data.test_labels, params.get("test_batch_size", 1000),
                             shuffle=False, seed=params["seed"], device=device, transform=mnist.reconstruct_batch)
        return Task(model=model, train=train, test=test,
                    on_step_end=every_n_steps(steps_between_frames(params, len(train)), hook),
                    loss_fn=nn.MSELoss(), loss_name="mse", record=record, context={"data": data},
                    # small matrix products (batch 64, 220k parameters): one thread is several times
                    # faster on a busy 2-core machine (measured 7 s vs 144 s for 20 epochs) and no slower idle
                    cpu_threads=1)

    def results(self, run):
        return {"data": run.task.context["data"].source}

    def figures(self, run, folder: Path):
        params, device, data = run.params, run.device, run.task.context["data"]
        shown = data.test_images[: params.get("shown_digits", 10)].numpy()
        model = run.model.eval()
        with torch.no_grad():
            decoded = model(mnist.to_unit(torch.from_numpy(shown).to(device))).mul(255).cpu().numpy()
        history = run.fit.history
        mse = history[-1].get("test_mse", float("nan")) if history else float("nan")
        size = (max(6.0, len(shown) * 0.9), 2.6)
        fig = new_figure(*size)
        draw_digit_rows(fig.add_subplot(1, 1, 1), shown, decoded.reshape(shown.shape).round().astype(np.uint8))
        fig.suptitle(f"autoencoder: test digits and their reconstructions (test MSE {mse:.4f})", fontsize=10)
        save(fig, folder / "reconstructions.png")

        count = min(int(params.get("scatter_points", 1000)), len(data.test_images))
        with torch.no_grad():
            codes = model.encode(mnist.to_unit(data.test_images[:count].to(device))).cpu().numpy()
        codes_3d_figure(codes, data.test_labels[:count].numpy(), folder / "codes_3d.png",
                        f"3-D codes of {count} test digits")

        frames = run.task.record.get("frames", [])
        if frames:
            reconstructions_animation(shown, frames, size, folder / "animation.gif")
        draw_loss(run, folder / "loss.png", "autoencoder: MSE")


def reconstructions_animation(shown: np.ndarray, frames: list[dict], size, path: Path) -> Path:
    """The reconstructions of the ``shown`` digits at every recorded step, as a GIF: the
    originals' row, the row names and the layout are drawn once; a frame swaps the mosaic."""
    writer = FrameWriter(size)
    ax = writer.figure.add_subplot(1, 1, 1)
    grid = draw_digit_rows(ax, shown, shown)
    writer.changing(grid, ax.title)
    for frame in frames:
        pictures = frame["decoded"].cpu().numpy().reshape(shown.shape)
        grid.set_data(mosaic(np.concatenate([shown, pictures]), len(shown), DIGIT_GAP))
        error = float(((pictures / 255.0 - shown / 255.0) ** 2).mean())
        ax.set_title(f"step {frame['step']}   MSE of these digits {error:.4f}", fontsize=10)
        writer.grab()
    return writer.write(path, fps=4)

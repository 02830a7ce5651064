"""The MNIST autoencoder: 784 pixels -> 3 numbers -> 784 pixels (the tutorial series' "AutoEncoder")."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import mnist
from ..models.autoencoder import AutoEncoder
from ..registry import experiment
from ..viz.animate import write_gif
from ..viz.embed import codes_3d_figure
from ..viz.plots import new_figure, save, to_array
from ..engine.loop import Task
from ._base import Experiment, draw_loss


def record_reconstructions(model: AutoEncoder, pixels: torch.Tensor, record: dict):
    """A step hook keeping the reconstructions of a few fixed test digits as uint8 (a GIF frame)."""

    def hook(step: int) -> None:
        with torch.no_grad():
            decoded = model(pixels)
        frame = decoded.mul(255).round_().to(torch.uint8)
        record.setdefault("frames", []).append({"step": step, "decoded": frame})

    return hook


def draw_rows(fig, originals: np.ndarray, decoded: np.ndarray, title: str) -> None:
    """Originals on top, reconstructions below, one column per digit."""
    count = len(originals)
    for row, images in enumerate((originals, decoded)):
        for i in range(count):
            ax = fig.add_subplot(2, count, row * count + i + 1)
            ax.imshow(images[i].reshape(28, 28), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel("original" if row == 0 else "decoded", fontsize=9)
    fig.suptitle(title, fontsize=10)


@experiment("autoencoder")
class Autoencoder(Experiment):
    objective = ("test_mse", "min")

    def build_from_run(self, params, device, run_dir, need_data):
        """export needs the model alone: no data set is read (or downloaded)."""
        if need_data:
            return self.build(params, device)
        return Task(model=AutoEncoder(), train=None, test=None, loss_fn=nn.MSELoss(), loss_name="mse")

    def example_input(self, task):
        return torch.rand(2, 28 * 28, generator=torch.Generator().manual_seed(0))

    def build(self, params, device):
        data = mnist.load_mnist(params.get("data_root"), allow_download=params.get("download", True))
        self.data = data
        model = AutoEncoder()
        shown = data.test_images[: params.get("shown_digits", 10)]
        self.record: dict = {}
        hook = record_reconstructions(model, mnist.to_unit(shown.to(device)), self.record)
        model.to(device)  # the hook runs the model on shown digits that already live on ``device``
        hook(0)  # the untrained net: the GIF's first frame
        train = mnist.batches(data.train_images, data.train_labels, params["batch_size"], shuffle=True,
                              seed=params["seed"], device=device, transform=mnist.reconstruct_batch)
        test = mnist.batches(data.test_images, data.test_labels, params.get("test_batch_size", 1000),
                             shuffle=False, seed=params["seed"], device=device, transform=mnist.reconstruct_batch)
        return Task(model=model, train=train, test=test,
                    on_step_end=mnist.every_n_steps(mnist.frame_interval(params, len(train)), hook),
                    loss_fn=nn.MSELoss(), loss_name="mse", record=self.record,
                    # small matrix products (batch 64, 220k parameters): one thread is several times
                    # faster on a busy 2-core machine (measured 7 s vs 144 s for 20 epochs) and no slower idle
                    cpu_threads=1)


    def extra_summary(self, task, fit, trainer):
        return {"data": self.data.source}

    def figures(self, task, fit, trainer, figures_dir: Path):
        params, device = trainer.params, trainer.device
        shown = self.data.test_images[: params.get("shown_digits", 10)].flatten(1).numpy()
        model = task.model.eval()
        with torch.no_grad():
            decoded = model(mnist.to_unit(torch.from_numpy(shown).to(device))).mul(255).cpu().numpy()
        mse = fit.history[-1].get("test_mse", float("nan")) if fit.history else float("nan")
        fig = new_figure(max(6.0, len(shown) * 0.9), 2.6)
        draw_rows(fig, shown, decoded, f"autoencoder: test digits and their reconstructions (test MSE {mse:.4f})")
        save(fig, figures_dir / "reconstructions.png")

        count = min(int(params.get("scatter_points", 1000)), len(self.data.test_images))
        with torch.no_grad():
            codes = model.encode(mnist.to_unit(self.data.test_images[:count].to(device))).cpu().numpy()
        codes_3d_figure(codes, self.data.test_labels[:count].numpy(), figures_dir / "codes_3d.png",
                        f"3-D codes of {count} test digits")

        pictures = []
        for frame in task.record.get("frames", []):
            fig = new_figure(max(6.0, len(shown) * 0.9), 2.6)
            draw_rows(fig, shown, frame["decoded"].cpu().numpy(), f"step {frame['step']}")
            pictures.append(to_array(fig))
        if pictures:
            write_gif(pictures, figures_dir / "animation.gif", fps=4)
        draw_loss(task, fit, figures_dir / "loss.png", "autoencoder: MSE")

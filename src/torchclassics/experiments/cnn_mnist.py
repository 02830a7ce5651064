"""Handwritten digits with the tutorial series' CNN, and the course layout's t-SNE GIF of its features.

Also home of :class:`MnistClassifier`, what the CNN and the LSTM lessons share: data,
evaluation on the whole test split plus the tutorial's first-2,000 figure, the first ten
predictions, sample and confusion figures, and ``predict`` from image files.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .. import progress
from ..data import mnist
from ..data.digits import DigitError, load_digit
from ..engine.loop import Task, accuracy_sum
from ..engine.threads import ALL_CORES
from ..models.cnn import CNN
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.embed import TsneAnimation, tsne, tsne_figure
from ..viz.plots import confusion_matrix, draw_image_grid, new_figure, save
from ._base import Experiment, FinishedRun, draw_loss
from .frames import every_n_steps, steps_between_frames

TUTORIAL_TEST = 2000  # the tutorial evaluated on the first 2,000 test digits only
SAMPLES = 32          # digits in the samples figure


@torch.no_grad()
def predict_all(model: nn.Module, images: torch.Tensor, device, batch_size: int = 1000) -> torch.Tensor:
    """Predicted labels (CPU int64) of uint8 images, in batches on ``device``."""
    model.eval()
    out = [model(mnist.normalise(images[i: i + batch_size].to(device))).argmax(1).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def samples_figure(images: torch.Tensor, labels: torch.Tensor, predicted: torch.Tensor, path: Path,
                   title: str) -> Path:
    """The first test digits with their predictions; a wrong one in red as 'predicted (true)'."""
    count = min(SAMPLES, len(images))
    columns = 8
    fig = new_figure(columns * 1.1, -(-count // columns) * 1.25 + 0.4)
    right = [int(p) == int(t) for p, t in zip(predicted[:count], labels[:count])]
    titles = [f"{int(p)}" if ok else f"{int(p)} ({int(t)})" for p, t, ok in zip(predicted, labels, right)]
    draw_image_grid(fig.add_subplot(1, 1, 1), images[:count].numpy(), columns, titles,
                    ["black" if ok else "red" for ok in right], fontsize=10, cmap="gray", vmin=0, vmax=255)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


class MnistClassifier(Experiment):
    """MNIST classification: a subclass gives ``make_model`` (and may add figures)."""

    objective = Objective("test_accuracy", "max")

    def make_model(self, params: dict, device: torch.device) -> nn.Module:
        raise NotImplementedError

    def model_alone(self, params, device, record):
        return Task(model=self.make_model(params, device), train=None, test=None, loss_fn=nn.CrossEntropyLoss(),
                    metrics={"accuracy": accuracy_sum})

    def example_input(self, task):
        """Two standardised 28 x 28 images (noise: export checks the graph, not the answer)."""
        generator = torch.Generator().manual_seed(0)
        return mnist.normalise(torch.randint(0, 256, (2, 28, 28), generator=generator, dtype=torch.uint8))

    def build(self, params, device):
        data = mnist.load_mnist(params.get("data_root"), allow_download=params.get("download", True))
        model = self.make_model(params, device)
        train = mnist.batches(data.train_images, data.train_labels, params["batch_size"], shuffle=True,
                              seed=params["seed"], device=device)
        test = mnist.batches(data.test_images, data.test_labels, params.get("test_batch_size", 1000),
                             shuffle=False, seed=params["seed"], device=device)
        return Task(model=model, train=train, test=test, loss_fn=nn.CrossEntropyLoss(),
                    metrics={"accuracy": accuracy_sum}, context={"data": data})

    # -- evaluation beyond the engine's test_accuracy --------------------------------
    @staticmethod
    def predictions(run: FinishedRun) -> torch.Tensor:
        """Every test digit's predicted label, computed once per run."""
        return run.remember("predicted", lambda: predict_all(run.model, run.task.context["data"].test_images,
                                                             run.device))

    def results(self, run):
        data = run.task.context["data"]
        labels, predicted = data.test_labels, self.predictions(run)
        first = min(TUTORIAL_TEST, len(labels))
        return {
            "data": data.source,
            "test_accuracy_first_2000": int((predicted[:first] == labels[:first]).sum()) / first if first else None,
            "first_10": {"predicted": predicted[:10].tolist(), "true": labels[:10].tolist()},
        }

    def figures(self, run, folder):
        data, predicted = run.task.context["data"], self.predictions(run)
        accuracy = float((predicted == data.test_labels).float().mean())
        samples_figure(data.test_images, data.test_labels, predicted, folder / "samples.png",
                       f"{self.name}: first test digits, predicted (true); test accuracy {accuracy:.4f}")
        confusion_matrix(data.test_labels.numpy(), predicted.numpy(), [str(d) for d in range(10)],
                         folder / "confusion.png", f"{self.name}: confusion on {len(predicted):,} test digits")
        draw_loss(run, folder / "loss.png", f"{self.name}: cross-entropy")

    # -- image files ------------------------------------------------------------------
    def export_metadata(self, task):
        return {"classes": [str(digit) for digit in range(10)], "prepare": "mnist_digit",
                "normalisation": {"mean": [mnist.MEAN], "std": [mnist.STD]}}

    @torch.no_grad()
    def predict(self, run, inputs):
        model, device = run.model.eval(), run.device
        rows = []
        for item in inputs:
            if isinstance(item, str):
                rows.append({"file": item, "error": f"a {self.name} run classifies image files, not texts"})
                continue
            try:
                digit = load_digit(item)
            except DigitError as err:
                rows.append({"file": str(item), "error": str(err)})
                continue
            probabilities = model(mnist.normalise(digit[None].to(device))).softmax(dim=1)[0]
            label = int(probabilities.argmax())
            rows.append({"file": str(item), "label": label, "probability": float(probabilities[label])})
        return rows


def record_conv_weights(model: CNN, record: dict):
    """A step hook keeping the convolution weights (13k numbers): a t-SNE frame is drawn from
    them after training, so nothing slow runs inside the timed loop."""

    def hook(step: int) -> None:
        weights = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("out.")}
        record.setdefault("frames", []).append({"step": step, "weights": weights})

    return hook


@experiment("cnn_mnist")
class CnnMnist(MnistClassifier):

    def make_model(self, params, device):
        # Channels-last (NHWC) weights make oneDNN's convolutions and max-pooling 1.35-1.5x
        # faster on a CPU (measured, 1 and 2 threads); the arithmetic is the same.
        return CNN().to(memory_format=torch.channels_last) if device.type == "cpu" else CNN()

    def build(self, params, device):
        task = super().build(params, device)
        hook = record_conv_weights(task.model, task.record)  # task.record is checkpointed: frames survive --resume
        hook(0)  # the untrained net: the GIF's first frame
        task.on_step_end = every_n_steps(steps_between_frames(params, len(task.train)), hook)
        # Convolutions are large ops: every core helps (idle 2-core CPU: 0.94 s vs 1.29 s an epoch
        # with two threads instead of one), although the model is small by parameter count.
        task.cpu_threads = ALL_CORES
        return task

    def figures(self, run, folder):
        super().figures(run, folder)
        tsne_figures(run, folder)


def tsne_figures(run: FinishedRun, figures_dir: Path) -> None:
    """t-SNE of the 1568-d features of ``tsne_points`` test digits: the trained net's (tsne.png) and one
    frame per snapshot (animation.gif), each started from the last."""
    params, data = run.params, run.task.context["data"]
    count = min(int(params.get("tsne_points", 500)), len(data.test_images))
    if count < 5:
        return
    # Channels-last, as training on a CPU: the snapshots' convolutions 1.4x faster (measured).
    images = mnist.normalise(data.test_images[:count]).contiguous(memory_format=torch.channels_last)
    labels = data.test_labels[:count].numpy()
    frames = list(run.task.record.get("frames", []))
    if not frames or frames[-1]["step"] != run.fit.steps:  # the trained net is the last frame
        frames.append({"step": run.fit.steps, "weights": run.model.state_dict()})
    snapshot_net = CNN().to(memory_format=torch.channels_last)
    points, animation = None, TsneAnimation(labels)
    with progress.phase(f"t-SNE of {count} test digits' features, {len(frames)} frames"):  # the slowest figure
        for frame in frames:
            weights = {k: v.detach().cpu() for k, v in frame["weights"].items() if not k.startswith("out.")}
            snapshot_net.load_state_dict({**snapshot_net.state_dict(), **weights})
            with torch.no_grad():
                features = snapshot_net.eval().features(images).numpy()
            points = tsne(features, seed=int(params["seed"]), start=points,
                          max_iter=int(params.get("tsne_iter", 500)))
            animation.frame(points, f"t-SNE of the CNN's features, step {frame['step']}")
    tsne_figure(points, labels, figures_dir / "tsne.png",
                f"t-SNE of the trained CNN's 1568-d features ({count} test digits)")
    animation.write(figures_dir / "animation.gif", fps=3)

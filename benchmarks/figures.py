"""The figure phase of every experiment: the drawing code of commit 5c6e76e ("before") against
the experiments' own ``figures`` of this checkout ("after"), alternating in one process.

Each experiment is trained once (small settings where the figures do not depend on them),
with its ``figures`` method replaced by one that keeps what it was given (the Task, the
FitResult, the Trainer). Then, round after round, the same inputs are drawn into a fresh
folder by

* **before**: a verbatim copy of the figure code of commit 5c6e76e (experiments' ``figures``
  and the viz functions they called), kept here below as the baseline;
* **after**: the experiment's own ``figures`` method as it is in this checkout, drawn with the
  new viz (FrameWriter, write_gif, loss_curves with step losses, draw_image_grid,
  TsneAnimation, the shorter t-SNE continuation).

The order alternates (before first in even rounds, after first in odd ones) after one untimed
warm-up round of each, so fonts, imports and caches are warm: the table is the drawing work
itself. Medians of ``--rounds`` rounds of wall and of CPU time (this process, all threads:
steadier on a shared machine) and of CPU time spent drawing (t-SNE, the CNN snapshots'
features and dogs_vs_cats' validation predictions left out); a speed-up is the median of the per-round ratios.
``--cold`` draws each time in a fresh process instead (trained there first), as a
``torchclassics run`` does: first use of fonts and matplotlib's caches included.

    python benchmarks/figures.py                         # every experiment, 3 rounds
    python benchmarks/figures.py regression cnn_mnist --rounds 5 --json out.json
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import imageio.v2 as imageio
import matplotlib
import numpy as np
import torch
from torchclassics.atomic import write_json

import torchclassics
from torchclassics import registry
from torchclassics.data import mnist, shapes
from torchclassics.viz.plots import new_figure

SETTINGS = {  # training settings; the figures drawn are those of the defaults
    "regression": {},
    "classification": {},
    "rnn_sincos": {},
    "autoencoder": {"epochs": 2, "download": False},  # ~20 frames whatever the epochs (gif_frames)
    "cnn_mnist": {"download": False},
    "lstm_mnist": {"download": False},
    "linear": {},
    "optimizers": {},
    "dogs_vs_cats": {"image_size": 32, "epochs": 3, "augment": False, "cnn_width": 8, "batch_size": 16},
}


# CPU seconds spent computing, not drawing, during one drawing: t-SNE and the snapshots' features
# (cnn_mnist), the validation predictions (dogs_vs_cats), so the table can tell the drawing's
# speed-up apart.
COMPUTED = {"cpu": 0.0}


def computing(function):
    def counted(*args, **kwargs):
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            COMPUTED["cpu"] += time.process_time() - start

    return counted


@computing
def snapshot_features(net, images) -> np.ndarray:
    with torch.no_grad():
        return net.eval().features(images).numpy()


# == before: the figure code of commit 5c6e76e, copied =========================================
def old_rows(task, history: list[dict]) -> list[dict]:
    """The epoch rows as the engine wrote them at 5c6e76e: the training loss as "loss", the
    held-out one as "test_loss" (now named after the experiment's loss: "mse", "test_mse")."""
    renamed = {task.loss_name: "loss", f"{task.held_out}_{task.loss_name}": "test_loss"}
    return [{renamed.get(key, key): value for key, value in row.items()} for row in history]


def old_save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    return path


def old_to_array(fig):
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def old_loss_curves(history, path, title=""):
    epochs = [row["epoch"] for row in history]
    has_accuracy = any("accuracy" in row or "test_accuracy" in row for row in history)
    fig = new_figure(10 if has_accuracy else 6.4, 4)
    ax = fig.add_subplot(1, 2 if has_accuracy else 1, 1)
    for key, label in (("loss", "train"), ("test_loss", "held-out")):
        if any(key in row for row in history):
            ax.plot(epochs, [row.get(key, np.nan) for row in history], label=label)
    ax.set(xlabel="epoch", ylabel="loss", title=title or "loss")
    if all(row.get("loss", 1) > 0 for row in history):
        ax.set_yscale("log")
    ax.legend()
    if has_accuracy:
        ax = fig.add_subplot(1, 2, 2)
        for key, label in (("accuracy", "train"), ("test_accuracy", "held-out")):
            if any(key in row for row in history):
                ax.plot(epochs, [row.get(key, np.nan) for row in history], label=label)
        ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
        ax.legend()
    return old_save(fig, path)


def old_confusion_matrix(true, predicted, labels, path, title="confusion matrix"):
    from sklearn.metrics import confusion_matrix as sk_confusion

    matrix = sk_confusion(np.asarray(true), np.asarray(predicted), labels=list(range(len(labels))))
    size = max(4.0, 0.5 * len(labels) + 2)
    fig = new_figure(size, size)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black", fontsize=8)
    return old_save(fig, path)


def old_write_gif(frames, path, fps=8.0):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    durations = [1000.0 / fps] * (len(frames) - 1) + [1500.0]
    imageio.mimsave(path, frames, format="GIF", duration=durations, loop=0)
    return path


def old_animate(items, draw, path, size=(5, 4), fps=8.0):
    frames = []
    for item in items:
        fig = new_figure(*size)
        draw(fig.add_subplot(1, 1, 1), item)
        frames.append(old_to_array(fig))
    return old_write_gif(frames, path, fps)


@computing
def old_tsne(features, seed=0, start=None, max_iter=500):
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    features = np.asarray(features, dtype=np.float32)
    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3.0)))
    if start is None:
        model = TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=max(250, max_iter),
                     random_state=seed, learning_rate="auto")
    else:
        model = TSNE(n_components=2, perplexity=perplexity, init=np.asarray(start, dtype=np.float32),
                     early_exaggeration=1.0, max_iter=250, random_state=seed, learning_rate="auto")
    with threadpool_limits(limits=1):
        return model.fit_transform(features)


def old_draw_tsne(ax, points, labels, title="", as_text=True):
    colours = matplotlib.colormaps["tab10"]
    labels = np.asarray(labels).astype(int)
    if as_text:
        for (x, y), label in zip(points, labels):
            ax.text(x, y, str(label), color=colours(label % 10), fontsize=7, ha="center", va="center",
                    fontweight="bold")
    else:
        for digit in range(10):
            chosen = labels == digit
            ax.scatter(points[chosen, 0], points[chosen, 1], s=8, color=colours(digit), label=str(digit))
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=1.5, frameon=False)
    span = np.ptp(points, axis=0) * 0.05 + 1e-6
    ax.set(xlim=(points[:, 0].min() - span[0], points[:, 0].max() + span[0]),
           ylim=(points[:, 1].min() - span[1], points[:, 1].max() + span[1]), xticks=[], yticks=[])
    ax.set_title(title, fontsize=10)


def old_codes_3d_figure(codes, labels, path, title=""):
    fig = new_figure(7, 6)
    ax = fig.add_subplot(1, 1, 1, projection="3d")
    scatter = ax.scatter(codes[:, 0], codes[:, 1], codes[:, 2], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5,
                         s=10, depthshade=False)
    ax.set(xlabel="code 1", ylabel="code 2", zlabel="code 3", title=title)
    colourbar = fig.colorbar(scatter, ax=ax, ticks=range(10), shrink=0.7, pad=0.1)
    colourbar.set_label("digit")
    return old_save(fig, path)


def before_regression(exp, task, fit, trainer, figures_dir):
    x, y = exp.x.flatten().numpy(), exp.y.flatten().numpy()
    frames = task.record.get("frames", [])

    def draw(ax, frame):
        ax.scatter(x, y, s=10, c="tab:blue", label="data")
        ax.plot(x, frame["y"].numpy(), "r-", lw=3, label="net")
        mse = float(((frame["y"] - exp.y.flatten()) ** 2).mean())
        ax.set(title=f"epoch {frame['epoch']}   MSE {mse:.4f}", ylim=(-0.2, 1.4))
        ax.legend(loc="upper center")

    if frames:
        fig = new_figure(5, 4)
        draw(fig.add_subplot(1, 1, 1), frames[-1])
        old_save(fig, figures_dir / "fit.png")
        old_animate(frames, draw, figures_dir / "animation.gif")
    old_loss_curves(fit.history, figures_dir / "loss.png", "regression: MSE")


def before_classification(exp, task, fit, trainer, figures_dir):
    x, y = exp.x.numpy(), exp.y.numpy()
    frames = task.record.get("frames", [])

    def draw(ax, frame):
        regions = frame["regions"].numpy().reshape(exp.gx.shape)
        ax.contourf(exp.gx, exp.gy, regions, levels=[-0.5, 0.5, 1.5], colors=["#ffd9b3", "#b3d9ff"], alpha=0.8)
        predicted = frame["points"].numpy()
        ax.scatter(x[:, 0], x[:, 1], c=predicted, cmap="RdYlBu", s=14, edgecolors="k", linewidths=0.3)
        accuracy = float((predicted == y).mean())
        ax.set(title=f"epoch {frame['epoch']}   accuracy {accuracy:.2f}")

    if frames:
        fig = new_figure(5, 4.5)
        draw(fig.add_subplot(1, 1, 1), frames[-1])
        old_save(fig, figures_dir / "decision_regions.png")
        old_animate(frames, draw, figures_dir / "animation.gif", size=(5, 4.5))
    old_loss_curves(fit.history, figures_dir / "loss.png", "classification")


def before_rnn_sincos(exp, task, fit, trainer, figures_dir):
    from torchclassics.experiments.rnn_sincos import predict_sequence

    t, target = exp.t_test.numpy(), exp.y_test.numpy()
    shown = slice(0, 10 * exp.params["time_steps"])

    def draw(ax, frame):
        ax.plot(t[shown], np.sin(t[shown]), "b:", lw=1, label="input sin(t)")
        ax.plot(t[shown], target[shown], "r-", label="target cos(t)")
        ax.plot(t[shown], frame["y"].numpy()[shown], "k--", label="RNN")
        mse = float(((frame["y"] - exp.y_test) ** 2).mean())
        ax.set(xlabel="t", ylim=(-1.3, 1.6), title=f"epoch {frame['epoch']}   held-out MSE {mse:.4f}")
        ax.legend(loc="upper right", ncol=3, fontsize=8)

    frames = task.record.get("frames", [])
    if frames:
        final = {"epoch": fit.history[-1]["epoch"], "y": predict_sequence(task.model, task.test)}
        fig = new_figure(8, 3.5)
        draw(fig.add_subplot(1, 1, 1), final)
        old_save(fig, figures_dir / "prediction.png")
        old_animate(frames, draw, figures_dir / "animation.gif", size=(8, 3.5))
    old_loss_curves(fit.history, figures_dir / "loss.png", "rnn_sincos: MSE")


def old_draw_rows(fig, originals, decoded, title):
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


def before_autoencoder(exp, task, fit, trainer, figures_dir):
    params, device = trainer.params, trainer.device
    shown = exp.data.test_images[: params.get("shown_digits", 10)].flatten(1).numpy()
    model = task.model.eval()
    with torch.no_grad():
        decoded = model(mnist.to_unit(torch.from_numpy(shown).to(device))).mul(255).cpu().numpy()
    mse = fit.history[-1].get("test_loss", float("nan")) if fit.history else float("nan")
    fig = new_figure(max(6.0, len(shown) * 0.9), 2.6)
    old_draw_rows(fig, shown, decoded, f"autoencoder: test digits and their reconstructions (test MSE {mse:.4f})")
    old_save(fig, figures_dir / "reconstructions.png")

    count = min(int(params.get("scatter_points", 1000)), len(exp.data.test_images))
    with torch.no_grad():
        codes = model.encode(mnist.to_unit(exp.data.test_images[:count].to(device))).cpu().numpy()
    old_codes_3d_figure(codes, exp.data.test_labels[:count].numpy(), figures_dir / "codes_3d.png",
                        f"3-D codes of {count} test digits")

    pictures = []
    for frame in task.record.get("frames", []):
        fig = new_figure(max(6.0, len(shown) * 0.9), 2.6)
        old_draw_rows(fig, shown, frame["decoded"].cpu().numpy(), f"step {frame['step']}")
        pictures.append(old_to_array(fig))
    if pictures:
        old_write_gif(pictures, figures_dir / "animation.gif", fps=4)
    old_loss_curves(fit.history, figures_dir / "loss.png", "autoencoder: MSE")


def old_samples_figure(images, labels, predicted, path, title):
    count = min(32, len(images))
    columns = 8
    rows = -(-count // columns)
    fig = new_figure(columns * 1.1, rows * 1.25 + 0.4)
    for i in range(count):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(images[i].numpy(), cmap="gray", vmin=0, vmax=255)
        right = int(predicted[i]) == int(labels[i])
        ax.set_title(f"{int(predicted[i])}" if right else f"{int(predicted[i])} ({int(labels[i])})",
                     color="black" if right else "red", fontsize=10)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return old_save(fig, path)


def before_mnist_classifier(exp, task, fit, trainer, figures_dir):
    data, predicted = exp.data, exp.predictions(task, trainer.device)
    accuracy = float((predicted == data.test_labels).float().mean())
    old_samples_figure(data.test_images, data.test_labels, predicted, figures_dir / "samples.png",
                       f"{exp.name}: first test digits, predicted (true); test accuracy {accuracy:.4f}")
    old_confusion_matrix(data.test_labels.numpy(), predicted.numpy(), [str(d) for d in range(10)],
                         figures_dir / "confusion.png", f"{exp.name}: confusion on {len(predicted):,} test digits")
    old_loss_curves(fit.history, figures_dir / "loss.png", exp.name)


def before_cnn_mnist(exp, task, fit, trainer, figures_dir):
    from torchclassics.models.cnn import CNN

    before_mnist_classifier(exp, task, fit, trainer, figures_dir)
    steps, params = fit.steps, trainer.params
    count = min(int(params.get("tsne_points", 500)), len(exp.data.test_images))
    images = mnist.normalise(exp.data.test_images[:count])
    labels = exp.data.test_labels[:count].numpy()
    frames = list(task.record.get("frames", []))
    if not frames or frames[-1]["step"] != steps:
        frames.append({"step": steps, "weights": task.model.state_dict()})
    snapshot_net, points, pictures = CNN(), None, []
    for frame in frames:
        weights = {k: v.detach().cpu() for k, v in frame["weights"].items() if not k.startswith("out.")}
        snapshot_net.load_state_dict({**snapshot_net.state_dict(), **weights})
        features = snapshot_features(snapshot_net, images)
        points = old_tsne(features, seed=int(params["seed"]), start=points, max_iter=int(params.get("tsne_iter", 500)))
        fig = new_figure(6, 5)
        old_draw_tsne(fig.add_subplot(1, 1, 1), points, labels, f"t-SNE of the CNN's features, step {frame['step']}",
                      as_text=False)
        pictures.append(old_to_array(fig))
    fig = new_figure(6, 6)
    old_draw_tsne(fig.add_subplot(1, 1, 1), points, labels,
                  f"t-SNE of the trained CNN's 1568-d features ({count} test digits)")
    old_save(fig, figures_dir / "tsne.png")
    old_write_gif(pictures, figures_dir / "animation.gif", fps=3)


def before_linear(exp, task, fit, trainer, figures_dir):
    from torchclassics.experiments.linear import least_squares

    x, y = exp.x.flatten(), exp.y.flatten()
    line = torch.linspace(float(x.min()), float(x.max()), 2)
    layer = task.model.cpu()
    fig = new_figure(6, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(x, y, "ro", label="data")
    ax.plot(line, line * exp.by_hand["w"] + exp.by_hand["b"], "b-", label="by hand")
    with torch.no_grad():
        ax.plot(line, layer(line.unsqueeze(1)).flatten(), "g--", label="nn.Linear + SGD")
    w, b, _ = least_squares(exp.x, exp.y)
    ax.plot(line, line * w + b, "k:", label="least squares")
    ax.set(xlabel="x", ylabel="y", title="a linear layer, two ways")
    ax.legend()
    old_save(fig, figures_dir / "fit.png")
    old_loss_curves(fit.history, figures_dir / "loss.png", "nn.Linear: MSE")


def before_optimizers(exp, task, fit, trainer, figures_dir):
    fig = new_figure(9, 4)
    ax = fig.add_subplot(1, 2, 1)
    for name, result in exp.fits.items():
        ax.plot(result.step_losses, label=name, lw=1)
    ax.set(xlabel="step", ylabel="training loss (batch)", ylim=(0, 0.2), title="loss per step")
    ax.legend()
    ax = fig.add_subplot(1, 2, 2)
    for name, result in exp.fits.items():
        rows = old_rows(task, result.history)
        ax.plot([r["epoch"] for r in rows], [r["test_loss"] for r in rows], marker="o", ms=3, label=name)
    ax.set(xlabel="epoch", ylabel="held-out MSE", yscale="log", title="held-out loss per epoch")
    ax.legend()
    old_save(fig, figures_dir / "loss.png")


def old_prediction_grid(found, classes, path, columns=4):
    shown = sorted(found["shown"], key=lambda s: s["true"] == s["predicted"])[:16]
    rows = max(1, -(-len(shown) // columns))
    fig = new_figure(2.2 * columns, 2.4 * rows + 0.4)
    wrong_total = sum(t != p for t, p in zip(found["true"], found["predicted"]))
    fig.suptitle(f"validation: {wrong_total} mistakes of {len(found['true'])} (red)")
    for k, sample in enumerate(shown):
        ax = fig.add_subplot(rows, columns, k + 1)
        ax.imshow(sample["image"].permute(1, 2, 0).numpy())
        wrong = sample["true"] != sample["predicted"]
        title = f"{classes[sample['predicted']]} {sample['probability']:.2f}"
        if wrong:
            title = f"✗ {title}\ntrue: {classes[sample['true']]}"
        ax.set_title(title, color="tab:red" if wrong else "black", fontsize=8)
        ax.set_axis_off()
    return old_save(fig, path)


def before_dogs_vs_cats(exp, task, fit, trainer, figures_dir):
    from torchclassics.experiments.dogs_vs_cats import validation_predictions

    old_loss_curves(fit.history, figures_dir / "loss.png", "dogs_vs_cats: loss")
    found = computing(validation_predictions)(trainer.model, task.test, len(exp.classes))
    old_confusion_matrix(found["true"], found["predicted"], exp.classes, figures_dir / "confusion.png",
                         title="validation confusion matrix")
    old_prediction_grid(found, exp.classes, figures_dir / "predictions.png")


# == after: the experiment's own figures() ======================================================
def after(exp, task, fit, trainer, figures_dir):
    """The experiment's own ``figures``, its computing counted apart as the baseline's is: the
    t-SNE and the snapshots' features of cnn_mnist, dogs_vs_cats' validation predictions."""
    from torchclassics.experiments import cnn_mnist, dogs_vs_cats

    class CountedCNN(cnn_mnist.CNN):  # the snapshots' net; the trained model is not one
        features = computing(cnn_mnist.CNN.features)

    with mock.patch.object(cnn_mnist, "tsne", computing(cnn_mnist.tsne)), \
            mock.patch.object(cnn_mnist, "CNN", CountedCNN), \
            mock.patch.object(dogs_vs_cats, "validation_predictions", computing(dogs_vs_cats.validation_predictions)):
        return type(exp).figures(exp, task, fit, trainer, figures_dir)


BEFORE = {"regression": before_regression, "classification": before_classification,
          "rnn_sincos": before_rnn_sincos, "autoencoder": before_autoencoder, "cnn_mnist": before_cnn_mnist,
          "lstm_mnist": before_mnist_classifier, "linear": before_linear, "optimizers": before_optimizers,
          "dogs_vs_cats": before_dogs_vs_cats}

# == the measurement ============================================================================
def trained(name: str, settings: dict, root: Path) -> SimpleNamespace:
    """Train ``name`` once; what its ``figures`` would have been given (nothing drawn)."""
    cls = type(registry.get(name))
    kept = SimpleNamespace()
    original = cls.figures

    def keep(self, task, fit, trainer, figures_dir):
        kept.exp, kept.task, kept.fit, kept.trainer = self, task, fit, trainer

    cls.figures = keep
    try:
        if name == "dogs_vs_cats":
            settings = {**settings, "data_root": str(shapes.make_folder(root / "images", 400, "kaggle", size=40,
                                                                         seed=1, broken=False)["root"])}
        torchclassics.run(name, out=root / "run", quiet=True, **settings)
    finally:
        cls.figures = original
    return kept


def timed(draw, inputs: SimpleNamespace, folder: Path) -> tuple[float, float, float]:
    """(wall, CPU, CPU drawing) seconds of one drawing. CPU time (this process, all threads) is
    the steadier on a shared machine; CPU drawing leaves out what ``computing`` counts."""
    folder.mkdir(parents=True)
    COMPUTED["cpu"] = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    draw(inputs.exp, inputs.task, inputs.fit, inputs.trainer, folder)
    cpu = time.process_time() - cpu
    return time.perf_counter() - wall, cpu, cpu - COMPUTED["cpu"]


KINDS = {"wall": 0, "CPU": 1, "CPU drawing": 2}  # the columns of timed()'s answer


def summary(name: str, times: dict) -> dict:
    """Medians of each side's wall and CPU seconds, and the medians of the per-round ratios."""
    result = {"experiment": name, "times": times}
    for kind, index in KINDS.items():
        for side, rounds in times.items():
            result[f"{side}_{kind}"] = statistics.median(r[index] for r in rounds)
        result[f"speedup_{kind}"] = statistics.median(
            b[index] / a[index] for b, a in zip(times["before"], times["after"]))
    return result


SIDES = ("before", "after")


def drawing(side: str, name: str):
    """The function drawing ``name``'s figures on ``side``; the baseline is given the rows as the
    engine wrote them at 5c6e76e (see old_rows)."""
    if side == "after":
        return after

    def before(exp, task, fit, trainer, figures_dir):
        return BEFORE[name](exp, task, replace(fit, history=old_rows(task, fit.history)), trainer, figures_dir)

    return before


def measure(name: str, rounds: int, root: Path) -> dict:
    inputs = trained(name, SETTINGS[name], root / name)
    times = {side: [] for side in SIDES}
    for round_ in range(-1, rounds):  # round -1: warm-up, not counted
        for side in SIDES if round_ % 2 == 0 else reversed(SIDES):
            seconds = timed(drawing(side, name), inputs, root / name / f"{side}{round_ + 1}")
            if round_ >= 0:
                times[side].append(seconds)
    return summary(name, times)


def measure_cold(name: str, rounds: int) -> dict:
    """Each drawing in a fresh process (trained there first): what a ``torchclassics run`` pays,
    first use of fonts and matplotlib's caches included."""
    times = {side: [] for side in SIDES}
    for round_ in range(rounds):
        for side in SIDES if round_ % 2 == 0 else reversed(SIDES):
            done = subprocess.run([sys.executable, __file__, name, "--one", side], capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{name} {side}: {done.stderr.strip()[-2000:]}")
            times[side].append([float(x) for x in done.stdout.split()[-3:]])
    return summary(name, times)


def draw_once(name: str, side: str) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as scratch:
        inputs = trained(name, SETTINGS[name], Path(scratch))
        return timed(drawing(side, name), inputs, Path(scratch) / side)


def row(r: dict) -> str:
    cells = [r["experiment"]]
    for kind in KINDS:
        cells += [f"{r[f'{side}_{kind}']:.2f} s" for side in SIDES] + [f"**{r[f'speedup_{kind}']:.1f}x**"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="*", metavar="NAME", help=f"default: all of {', '.join(SETTINGS)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--keep", type=Path, help="draw into this folder and keep it (to look at the figures)")
    parser.add_argument("--cold", action="store_true", help="every drawing in a fresh process (first use)")
    parser.add_argument("--one", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = sorted(set(args.experiments) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown experiment {', '.join(unknown)}; choose from {', '.join(SETTINGS)}")
    if args.one:  # a child of --cold: one drawing, its seconds (timed()) on the last line
        print(*draw_once(args.experiments[0], args.one))
        return
    header = ["experiment"] + [f"{side} {kind}" for kind in KINDS for side in [*SIDES, "speed-up"]]
    print("| " + " | ".join(header) + " |\n|" + " --- |" * len(header), flush=True)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.experiments or list(SETTINGS):
            if args.cold:
                results.append(measure_cold(name, args.rounds))
            else:
                results.append(measure(name, args.rounds, args.keep or Path(scratch)))
            print(row(results[-1]), flush=True)
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    sys.exit(main())

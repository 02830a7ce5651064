"""Static figures, drawn with matplotlib's object API (no pyplot global state, no GUI backend)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(width: float = 6.4, height: float = 4.8) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    return path


def to_array(fig: Figure) -> np.ndarray:
    """The figure as an RGB image (a GIF frame)."""
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def loss_curves(history: list[dict], path: Path, title: str = "", *, loss: str = "loss", held_out: str = "test",
                step_losses=None) -> Path:
    """Train and held-out loss per epoch; accuracy beside it when there is one."""
    epochs = [row["epoch"] for row in history]
    has_accuracy = any("accuracy" in row or f"{held_out}_accuracy" in row for row in history)
    fig = new_figure(10 if has_accuracy else 6.4, 4)
    ax = fig.add_subplot(1, 2 if has_accuracy else 1, 1)
    for key, label in ((loss, "train"), (f"{held_out}_{loss}", "held-out")):
        if any(key in row for row in history):
            ax.plot(epochs, [row.get(key, np.nan) for row in history], label=label)
    ax.set(xlabel="epoch", ylabel="loss", title=title or "loss")
    if all(row.get(loss, 1) > 0 for row in history):
        ax.set_yscale("log")
    ax.legend()
    if has_accuracy:
        ax = fig.add_subplot(1, 2, 2)
        for key, label in (("accuracy", "train"), (f"{held_out}_accuracy", "held-out")):
            if any(key in row for row in history):
                ax.plot(epochs, [row.get(key, np.nan) for row in history], label=label)
        ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
        ax.legend()
    return save(fig, path)


def confusion_matrix(true, predicted, labels: list[str], path: Path, title: str = "confusion matrix") -> Path:
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
    return save(fig, path)

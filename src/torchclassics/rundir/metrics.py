"""How metrics are named, and which way is better.

A training row (metrics.jsonl) holds bookkeeping (epoch, step, lr, train_s, and tag for one model
of several) and metrics: training ones by their name (``mse``), held-out ones with the held-out
split's prefix (``test_mse``, ``val_accuracy``). A run of several models names a model's metric
with the model too (``test_mse_Adam``, ``Adam_test_loss``).

An :class:`Objective` is the metric that picks best.pt and that search optimises, with its
direction. Its direction is declared by the experiment; for a metric a user names, it is
guessed from the name (:func:`guessed_mode`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

HELD_OUT_SPLITS = ("test", "val")
TRAIN = "train"
BOOKKEEPING = ("epoch", "step", "lr", "train_s", "tag")
_HELD_OUT = re.compile(r"(?:^|_)(?:test|val)_")  # test_mse, val_accuracy, Adam_test_loss
# Higher is better for accuracy-like metrics (accuracy, F1, precision, recall, AUC, R², IoU, score,
# return, PSNR, SSIM); lower for everything else (loss, mse, mae, error, distance, seconds).
HIGHER_IS_BETTER = ("f1", "precision", "recall", "auc", "r2", "iou", "score", "psnr", "ssim", "return", "confident")
MODES = ("min", "max")


def held_out(split: str, name: str) -> str:
    """``held_out("test", "mse")`` -> ``test_mse``."""
    return f"{split}_{name}"


def is_held_out(metric: str) -> bool:
    return bool(_HELD_OUT.search(metric))


def split_of(metric: str) -> tuple[str | None, str]:
    """``test_mse`` -> ("test", "mse"); ``mse`` -> (None, "mse")."""
    split, sep, rest = metric.partition("_")
    return (split, rest) if sep and rest and split in HELD_OUT_SPLITS else (None, metric)


def label(metric: str, metrics: dict) -> str:
    """How a summary names a metric: ``test_mse`` -> "test mse"; ``mse`` -> "train mse" when a held-out
    twin is there; anything else as it is."""
    split, rest = split_of(metric)
    if split is not None:
        return f"{split} {rest}"
    if any(held_out(s, metric) in metrics for s in HELD_OUT_SPLITS):
        return f"{TRAIN} {metric}"
    return metric


def row_metrics(row: dict) -> dict:
    """A training row without its bookkeeping."""
    return {key: value for key, value in row.items() if key not in BOOKKEEPING}


def guessed_mode(metric: str) -> str:
    tokens = [t for t in re.split(r"[^a-z0-9]+", metric.lower()) if t]
    return "max" if any(t.startswith("acc") or t in HIGHER_IS_BETTER for t in tokens) else "min"


@dataclass(frozen=True)
class Objective:
    """The metric that picks best.pt and that search optimises, and whether lower or higher wins."""

    metric: str
    mode: str = "min"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"Objective mode {self.mode!r}: choose 'min' or 'max'")

    @classmethod
    def guessed(cls, metric: str) -> Objective:
        return cls(metric, guessed_mode(metric))

    @classmethod
    def from_direction(cls, metric: str, direction: str) -> Objective:
        """Optuna's words: "minimize" or "maximize"."""
        return cls(metric, "max" if direction == "maximize" else "min")

    @property
    def direction(self) -> str:
        return "maximize" if self.mode == "max" else "minimize"

    def better(self, value, than) -> bool:
        """Whether ``value`` beats ``than`` (None: nothing yet); NaN and None never win."""
        if value is None or value != value:
            return False
        return than is None or (value > than if self.mode == "max" else value < than)

    def as_dict(self) -> dict:
        return {"metric": self.metric, "mode": self.mode}

"""Concept demonstrations: ideas of the lessons that are not a training run.

Each lesson is a module here with a ``run(out: Path) -> Path | None`` that prints
what it shows and, when it has a figure, draws it into ``out``; its one-line
description is in ``DESCRIPTIONS`` below. The modules are imported only when asked
for, so ``torchclassics lesson --list`` stays instant.
"""
from __future__ import annotations

import difflib
import importlib
from pathlib import Path

from ..core.errors import UserError

# Teaching order: from tensors up to feeding a training loop, then recurrent nets, then the
# autoencoder against PCA, then a net inside scikit-learn, then training on several devices.
LESSONS = ("tensors", "shapes", "layers", "activations", "losses", "autograd", "build", "debug", "save_restore",
           "dataloader", "rnn", "pca", "sklearn", "parallel")

# Kept here rather than read from the modules, so listing imports nothing heavy.
DESCRIPTIONS = {
    "tensors": "torch <-> numpy (shared memory), operations next to numpy, autograd of mean(x^2)",
    "shapes": "unsqueeze/view to (N, 1), torch.normal, torch.cat, float inputs and long labels, "
              "torch.max(out, 1)[1], why zero_grad",
    "layers": "nn.Linear's weight and bias shapes, chaining layers, stacked linear layers collapse into one",
    "activations": "Sigmoid ... GELU with their gradients; saturation and dying ReLU",
    "losses": "MSE, L1, SmoothL1, CrossEntropy, NLL (weighted, 2-D), BCEWithLogits vs hand computation",
    "autograd": "backward(gradient=...) on a non-scalar output, several losses in one scalar, "
                "the last layer and loss of regression, binary and multi-class problems",
    "debug": "the dynamic graph (print and if inside forward, the traceback's line) against torch.jit.trace "
             "and torch.export",
    "build": "a class-based net and nn.Sequential of the same layers are the same function",
    "save_restore": "state_dict save/restore, the whole net via torch.export, why pickles are refused",
    "dataloader": "TensorDataset + DataLoader: batches, shuffle, 2 workers, seeded, drop_last",
    "rnn": "gradients through time (RNN vs LSTM), the LSTM's gates by hand, h_n vs c_n, detaching the state",
    "pca": "PCA with 3 components vs a real autoencoder run on the same MNIST digits (MSE, codes side by side)",
    "sklearn": "the two clusters by the engine and by scikit-learn's GridSearchCV over a skorch estimator, "
               "side by side",
    "parallel": "nn.DataParallel vs DistributedDataParallel: the same run in 1 process and with torchrun "
                "(2 CPU processes), DataParallel where CUDA GPUs exist",
}


def list_lessons() -> list[tuple[str, str]]:
    """(name, one-line description) of every lesson, in teaching order."""
    return [(name, DESCRIPTIONS[name]) for name in LESSONS]


def _lesson_module(name: str):
    if name not in LESSONS:
        close = difflib.get_close_matches(name, LESSONS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(f"unknown lesson '{name}': {hint}choose one of {', '.join(LESSONS)} "
                        "(torchclassics lesson --list)")
    return importlib.import_module(f"{__name__}.{name}")


def run_lesson(name: str, out: str | Path | None = None) -> Path | None:
    """Run lesson ``name``, printing what it shows; its figures go to ``out``
    (default ``./lesson_figures/<name>``). Returns that folder, or None when the
    lesson draws nothing."""
    module = _lesson_module(name)
    folder = Path(out) if out else Path("lesson_figures") / name
    print(f"== lesson {name}: {DESCRIPTIONS[name]}")
    written = module.run(folder)
    if written is None:
        print(f"(lesson {name} has no figure)")
        return None
    print(f"figures written to {written}")
    return written

"""Names and places: the run directory contract (DESIGN.md) in one module.

    <runs root>/<experiment>/<run-id>/
        params.json  metrics.jsonl  summary.json  train.log  trial.json (search trials)
        checkpoints/[<tag>/]last.pt, best.pt      figures/     tensorboard/     export/
    <runs root>/studies/<study>/journal.log, best_params.json, *.png
    <runs root>/results.md, report.html
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..core.errors import UserError

PARAMS = "params.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
TRIAL = "trial.json"
LOG = "train.log"
LOCK = ".lock"
CHECKPOINTS = "checkpoints"
FIGURES = "figures"
TENSORBOARD = "tensorboard"
EXPORT = "export"
LAST, BEST = "last", "best"   # the checkpoints: the training state, and the best weights
CHECKPOINT_SUFFIX = ".pt"
STUDIES = "studies"
JOURNAL = "journal.log"
BEST_PARAMS = "best_params.json"
RESULTS = "results.md"
REPORT = "report.html"
RUNS_VARIABLE = "TORCHCLASSICS_RUNS"
# The folders inside a run directory that the writer makes and writes into.
RUN_FOLDERS = (CHECKPOINTS, FIGURES, TENSORBOARD, EXPORT)


def runs_root(runs_dir: str | Path | None = None) -> Path:
    return Path(runs_dir or os.environ.get(RUNS_VARIABLE) or "runs")


def new_run_path(experiment: str, runs_dir: str | Path | None = None) -> Path:
    """``<runs root>/<experiment>/<timestamp>``, created here: ``os.mkdir`` is atomic, so two runs
    started in the same second get two folders (``-2``, ``-3``, ...), never one."""
    parent = runs_root(runs_dir) / experiment
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        path = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise UserError(f"{parent}: cannot find a free run name for {stamp}; remove some runs or give {{out}}.")


def trial_path(runs_root_path: str | Path, experiment: str, study: str, number: int) -> Path:
    """``<runs root>/<experiment>/<study>-trial-<n>``; a suffix if a deleted study left that folder behind."""
    base = Path(runs_root_path) / experiment / f"{study}-trial-{number}"
    path, n = base, 1
    while path.exists() and any(path.iterdir()):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def study_folder(runs_root_path: str | Path, study: str) -> Path:
    return Path(runs_root_path) / STUDIES / study


def checkpoint_folder(run_path: str | Path, tag: str = "") -> Path:
    """``checkpoints/``, or ``checkpoints/<tag>/`` for one model of a run of several (optimizers)."""
    folder = Path(run_path) / CHECKPOINTS
    return folder / tag if tag else folder


def checkpoint_path(run_path: str | Path, which: str = LAST, tag: str = "") -> Path:
    return checkpoint_folder(run_path, tag) / f"{which}{CHECKPOINT_SUFFIX}"


def is_checkpoint_name(which: str) -> bool:
    return which in (LAST, BEST)

"""The Python API; the CLI is a thin layer over it.

    import torchclassics
    result = torchclassics.run("regression", lr=0.2)
    result.metrics["test_mse"], result.run_dir, result.model
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import config, registry
from .engine import checkpoint
from .engine.device import pick_device, seed_everything
from .engine.distributed import from_env as distributed_from_env
from .engine.loop import Trainer, evaluate_task
from .engine.rundir import RunDir, new_run_path, versions
from .errors import UserError


@dataclass
class RunResult:
    experiment: str
    run_dir: Path
    metrics: dict
    summary: dict
    model: torch.nn.Module

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.metrics.items() if isinstance(v, float))
        return f"RunResult({self.experiment}, {self.run_dir}, {shown})"


def _overrides(sets: list[str] | None, kwargs: dict) -> dict:
    overrides = dict(config.parse_override(s) for s in sets or [])
    overrides.update(kwargs)
    return overrides


def _resume_params(run: RunDir, name: str, overrides: dict) -> dict:
    """A resumed run keeps its own params.json; only ``epochs`` may grow."""
    saved = run.params()
    if saved.get("experiment") != name:
        raise UserError(f"--resume: {run.path} holds a '{saved.get('experiment')}' run, not '{name}'.")
    unexpected = sorted(set(overrides) - {"epochs"})
    if unexpected:
        raise UserError(f"--resume continues with the run's own params.json; drop --set {', '.join(unexpected)}.")
    params = config.apply_overrides(saved, overrides)
    config.validate(params)
    return params


def run(name: str, *, out: str | Path | None = None, runs_dir: str | Path | None = None,
        device: str = "auto", resume: bool = False, quiet: bool = True, figures: bool = True,
        sets: list[str] | None = None, report=None, summary_extra: dict | None = None, **overrides: Any) -> RunResult:
    """Train, evaluate and draw one experiment; returns a :class:`RunResult`.

    ``overrides`` (or ``sets``, CLI-style ``"key=value"`` strings) replace defaults of
    ``experiments/<name>/params.json``. ``out`` is the run directory itself; without it
    a new ``<runs_dir>/<name>/<timestamp>`` is made. ``report(epoch, row)`` is called
    after every epoch with the metrics under their summary names (search uses it for pruning).
    """
    started = time.perf_counter()
    experiment = registry.get(name)
    target = pick_device(device)  # a bad --device fails first, before any work
    overrides = _overrides(sets, overrides)
    if resume and out is None:
        raise UserError("--resume needs --out DIR: the run directory to continue.")
    dist = distributed_from_env()
    writer = dist is None or dist.is_writer
    if resume:
        run_dir = RunDir(Path(out), writer=writer)
        params = _resume_params(run_dir, name, overrides)
    else:
        params = {"experiment": name, **config.resolve(name, overrides)}
        path = Path(out) if out else new_run_path(name, runs_dir)
        run_dir = RunDir(dist.share(path) if dist else path, writer=writer)
    target = dist.device if dist else target
    seed_everything(params.get("seed", 0))
    task = experiment.build(params, target)  # data errors surface here, before anything is written
    experiment.check(params, task)  # so do optimizer and scheduler arguments
    if dist:
        task.train.shard(dist.rank, dist.world)
    run_dir.prepare(params, resume)
    run_dir.info(f"{name} on {target}; params {json.dumps(params)}")

    def reported_row(epoch, row):  # the per-epoch row under the names summary.json uses
        report(epoch, {experiment.reported_name(key): value for key, value in row.items()})

    def make_trainer(task, trainer_params=None, tag=""):
        return Trainer(task, trainer_params or params, run_dir, target, tag=tag, quiet=quiet,
                       distributed=dist, report=reported_row if report else None)

    try:
        fit, trainer = experiment.train(task, make_trainer, resume)
        metrics = experiment.final_metrics(task, fit, trainer)
        summary = {
            "experiment": name,
            "run": run_dir.path.name,
            "params": params,
            "seed": params.get("seed"),
            "device": str(target),
            "world_size": dist.world if dist else 1,
            "epochs": params.get("epochs"),
            "steps": fit.steps,
            "resumed_from_epoch": fit.resumed_from,
            "metrics": metrics,
            "best": {**fit.best, "metric": experiment.reported_name(fit.best["metric"])},
            "train_s": round(fit.train_s, 4),
            "versions": versions(),
            **experiment.extra_summary(task, fit, trainer),
            **(summary_extra or {}),
        }
        if writer and figures:
            experiment.figures(task, fit, trainer, run_dir.figures)
        summary["wall_s"] = round(time.perf_counter() - started, 4)
        run_dir.write_summary(summary)
        run_dir.info(f"done: {json.dumps(metrics)}")
    finally:
        run_dir.close()
        if dist:
            dist.close()
    return RunResult(name, run_dir.path, metrics, summary, task.model)


def load_run(run_path: str | Path, checkpoint_name: str = "best", device: str = "cpu"):
    """(experiment, params, task with the checkpoint's weights, device, checkpoint path) of a finished run."""
    run_dir = RunDir.existing(run_path)
    params = run_dir.params()
    name = params.get("experiment")
    if not name:
        raise UserError(f"{run_dir.path}/params.json names no experiment.")
    if checkpoint_name not in ("best", "last"):
        raise UserError(f"--checkpoint {checkpoint_name}: choose best or last.")
    experiment = registry.get(name)
    target = pick_device(device)
    seed_everything(params.get("seed", 0))
    task = experiment.build_from_run(params, target, run_dir)
    path = experiment.checkpoint_folder(run_dir) / f"{checkpoint_name}.pt"
    if not path.exists():
        raise UserError(f"{run_dir.path} has no {path.relative_to(run_dir.path)} (was the run killed before its first checkpoint?).")
    task.model.load_state_dict(checkpoint.load(path, map_location=target)["model"])
    task.model.to(target).eval()
    return experiment, params, task, target, path


def evaluate(run_path: str | Path, checkpoint_name: str = "best", device: str = "cpu") -> dict:
    """Held-out metrics of a run's best or last checkpoint."""
    experiment, params, task, target, path = load_run(run_path, checkpoint_name, device)
    metrics = {experiment.reported_name(k): v for k, v in evaluate_task(task, task.model, target).items()}
    return {"run": str(Path(run_path)), "checkpoint": checkpoint_name, **metrics}


def predict(run_path: str | Path, files: list[str | Path], checkpoint_name: str = "best", device: str = "cpu") -> list[dict]:
    """One dict per file: ``file``, and ``label`` + ``probability``, or ``error``."""
    experiment, params, task, target, _ = load_run(run_path, checkpoint_name, device)
    return experiment.predict(task.model, params, [Path(f) for f in files], target)


def list_experiments() -> list[tuple[str, str]]:
    return [(name, registry.get(name).description) for name in registry.names()]

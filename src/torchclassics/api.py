"""The Python API; the CLI is a thin layer over it.

    import torchclassics
    result = torchclassics.run("regression", lr=0.2)
    result.metrics["test_mse"], result.run_dir, result.model

A run goes through named steps: resolve the parameters (no torch yet, so a mistake is
answered at once) -> build the experiment's Task -> check what only torch can judge ->
claim the run directory -> train -> summarise -> draw. Nothing is written before the
run directory is claimed, and every check comes before that.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config, progress, registry
from .engine.rundir import RunDir, checkpoint_interval, new_run_path
from .errors import UserError


@dataclass
class RunResult:
    experiment: str
    run_dir: Path
    metrics: dict
    summary: dict
    model: Any  # the trained torch.nn.Module

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.metrics.items() if isinstance(v, float))
        return f"RunResult({self.experiment}, {self.run_dir}, {shown})"


def params(name: str, *, sets: list[str] | None = None, params_file: str | Path | None = None,
           **overrides: Any) -> dict:
    """The parameters ``run`` would use, validated, without running anything."""
    return config.resolve(name, params_file=params_file, sets=sets or (), overrides=overrides)


def run(name: str, *, out: str | Path | None = None, runs_dir: str | Path | None = None,
        device: str = "auto", resume: bool = False, quiet: bool = False, figures: bool = True,
        sets: list[str] | None = None, params_file: str | Path | None = None, report=None,
        summary_extra: dict | None = None, **overrides: Any) -> RunResult:
    """Train, evaluate and draw one experiment; returns a :class:`RunResult`.

    Parameters come from the experiment's defaults, then ``params_file`` (a params.json or
    search's best_params.json), then ``sets`` (CLI-style ``"key=value"``) and ``overrides``.
    ``out`` is the run directory itself; without it a new ``<runs_dir>/<name>/<timestamp>`` is
    made. ``resume`` continues the run in ``out`` from its last checkpoint (only ``epochs`` may
    change). ``report(epoch, row)`` is called after every epoch (search prunes with it).
    ``quiet`` silences the progress lines on stderr.
    """
    started = time.perf_counter()
    config.check_name(name)
    if out is not None and _elastic_restart():
        resume = True  # torchrun restarted the job: continue from the checkpoint
    if resume and out is None:
        raise UserError("--resume needs --out DIR: the run directory to continue.")
    if resume and params_file is not None:
        raise UserError("--resume continues with the run's own params.json; drop --params.")
    checkpoint_interval()  # a bad $TORCHCLASSICS_CHECKPOINT_SECONDS fails before any work
    fresh = None if resume else config.resolve(name, params_file=params_file, sets=sets or (), overrides=overrides)
    if fresh is not None and out is not None and RunDir(Path(out)).holds_run_data():
        raise UserError(f"{out} already holds a run; choose a new --out, or add --resume to continue it.")
    with progress.quiet(quiet):
        return _run(name, fresh, out=out, runs_dir=runs_dir, device=device, resume=resume, figures=figures,
                    sets=sets or [], overrides=overrides, report=report, summary_extra=summary_extra,
                    started=started)


def _elastic_restart() -> bool:
    """torchrun restarted this worker after a failure (``--max-restarts``): continue, do not start over."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0


def _resumed_params(name: str, run_dir: RunDir, sets: list[str], overrides: dict) -> dict:
    """A resumed run keeps its own params.json; only ``epochs`` may change (``--set`` values equal to
    the run's own are fine: the same command line with --resume, or torchrun's restart, continues).
    A run killed before it wrote params.json starts again from the experiment's parameters."""
    saved = run_dir.saved_params()
    if saved is None:
        return config.resolve(name, sets=sets, overrides=overrides)
    source = (saved, str(run_dir.path / "params.json"))
    params = config.resolve(name, saved=source, sets=sets, overrides=overrides)
    own = config.resolve(name, saved=source)
    changed = sorted(key for key in params if key != "epochs" and params[key] != own[key])
    if changed:
        raise UserError(f"--resume continues with the run's own params.json; drop --set {', '.join(changed)} "
                        "(only epochs may change).")
    return params


def _run(name, fresh, *, out, runs_dir, device, resume, figures, sets, overrides, report, summary_extra, started):
    from .engine.device import pick_device, seed_everything
    from .engine.distributed import from_env as distributed_from_env

    target = pick_device(device)  # a bad --device fails before any work
    dist = distributed_from_env()
    writer = dist is None or dist.is_writer
    target = dist.device if dist else target
    run_dir = RunDir(Path(out), writer=writer) if resume else None
    try:
        if resume:
            run_dir.claim(resume=True)
            params = _resumed_params(name, run_dir, sets, overrides)
        else:
            params = fresh
        experiment = registry.get(name)
        seed_everything(params["seed"])
        with progress.phase(f"preparing {name} (data, model)"):
            task = experiment.build(params, target)  # data errors surface here, before anything is written
        experiment.check(params, task, target)  # so do optimizer, scheduler and precision
        if dist:
            task.train.shard(dist.rank, dist.world)
        if run_dir is None:
            run_dir = _claim_new(name, out, runs_dir, writer, dist)
        run_dir.planned = {"experiment": name, **params}
        fit, trainer = experiment.train(task, _trainer_factory(params, run_dir, target, dist, experiment, report), resume)
        metrics = experiment.final_metrics(task, fit, trainer)
        summary = summarise(name, params, run_dir, experiment, task, fit, trainer, metrics, target, dist)
        summary.update(summary_extra or {})
        if writer and figures:
            with progress.phase("drawing figures"):
                experiment.figures(task, fit, trainer, run_dir.figures)
        summary["wall_s"] = round(time.perf_counter() - started, 4)
        run_dir.write_summary(summary)
        run_dir.info(f"done: {json.dumps(metrics)}")
    finally:
        if run_dir is not None:
            run_dir.close()
        if dist:
            dist.close()
    return RunResult(name, run_dir.path, metrics, summary, task.model)


def _claim_new(name, out, runs_dir, writer, dist) -> RunDir:
    """The new run's folder, made and locked (rank 0 names it for every process under DDP)."""
    path = None
    if writer:
        path = Path(out) if out else new_run_path(name, runs_dir)
    if dist:
        path = dist.share(path)
    run_dir = RunDir(path, writer=writer)
    run_dir.claim(resume=False)
    run_dir.created = run_dir.created or (writer and out is None)  # new_run_path made it for this run
    return run_dir


def _trainer_factory(params, run_dir, target, dist, experiment, report):
    from .engine.loop import Trainer

    def make_trainer(task, trainer_params=None, tag=""):
        return Trainer(task, trainer_params or params, run_dir, target, tag=tag, distributed=dist, report=report)

    return make_trainer


def summarise(name, params, run_dir, experiment, task, fit, trainer, metrics, target, dist) -> dict:
    """summary.json: the run directory contract's one place (DESIGN.md)."""
    from .engine.rundir import versions

    metric, mode = experiment.objective
    return {
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
        "objective": {"metric": metric, "mode": mode},
        "best": dict(fit.best),
        "train_s": round(fit.train_s, 4),
        "versions": versions(),
        **_plugin_module(name),
        **experiment.extra_summary(task, fit, trainer),
    }


def _plugin_module(name: str) -> dict:
    """For an experiment of one's own named by --module or $TORCHCLASSICS_PLUGINS, where its code
    is: evaluate, predict and export of the run find it there (entry points are found anyway)."""
    plugin = config.plugin_experiments().get(name) if config.is_plugin(name) else None
    return {"module": plugin.source} if plugin and plugin.origin == f"${config.PLUGINS_VARIABLE}" else {}


def _find_plugin_of(run_dir: RunDir, name: str) -> None:
    """A run of an experiment of one's own that nothing names now: its summary.json says where
    the module was."""
    summary = run_dir.path / "summary.json"
    if name in config.all_experiment_names() or not summary.is_file():
        return
    module = config.read_json(summary).get("module")
    if isinstance(module, str) and module:
        config.add_plugin_modules([module])


# -- finished runs ---------------------------------------------------------------------------------
def load_run(run_path: str | Path, checkpoint_name: str = "best", device: str = "cpu", need_data: bool = True):
    """(experiment, params, task with the checkpoint's weights, device, checkpoint path) of a run.

    ``need_data`` False (predict, export) builds the model without the data where the
    experiment knows it from params.json alone."""
    from .engine import checkpoint
    from .engine.device import pick_device, seed_everything

    run_dir = RunDir.existing(run_path)
    saved = run_dir.params()
    name = saved.get("experiment")
    if not isinstance(name, str) or not name:
        raise UserError(f"{run_dir.path}/params.json names no experiment.")
    _find_plugin_of(run_dir, name)
    if checkpoint_name not in ("best", "last"):
        raise UserError(f"--checkpoint {checkpoint_name}: choose best or last.")
    params = config.resolve(name, saved=(saved, str(run_dir.path / "params.json")))
    experiment = registry.get(name)
    target = pick_device(device)
    seed_everything(params["seed"])
    path = experiment.checkpoint_folder(run_dir) / f"{checkpoint_name}.pt"
    if not path.exists():
        raise UserError(f"{run_dir.path} has no {path.relative_to(run_dir.path)} (was the run killed before its "
                        "first checkpoint?).")
    state = checkpoint.load(path, map_location=target)
    task = experiment.build_from_run(params, target, run_dir, need_data)
    checkpoint.load_weights(task.model, state["model"], path, f"a {name} model with these params")
    for other, weights in state.get("models", {}).items():  # a GAN's discriminator, a DQN's target net
        if other in (task.models or {}):
            checkpoint.load_weights(task.models[other], weights, path, f"the {other} of a {name} run")
    task.model.to(target).eval()
    return experiment, params, task, target, path


def evaluate(run_path: str | Path, checkpoint_name: str = "best", device: str = "cpu") -> dict:
    """Held-out metrics of a run's best or last checkpoint."""
    from .engine.loop import evaluate_task

    experiment, params, task, target, path = load_run(run_path, checkpoint_name, device, need_data=True)
    if task.evaluate is not None:  # the experiment's own held-out measure (a policy's return, a GAN's distance)
        import torch

        from .engine.loop import Trainer

        with torch.no_grad():
            metrics = task.evaluate(Trainer(task, params, RunDir.existing(run_path), target))
    elif task.test is not None:
        metrics = evaluate_task(task, task.model, target)
    else:
        raise UserError(f"{experiment.name} runs have no held-out split to evaluate.")
    return {"run": str(Path(run_path)), "checkpoint": checkpoint_name, **metrics}


def predict(run_path: str | Path, files: list[str | Path] = (), checkpoint_name: str = "best", device: str = "cpu",
            texts: list[str] = ()) -> list[dict]:
    """One dict per file (a ``Path``) or text (a ``str``): ``file``, and ``label`` + ``probability``,
    or ``error``."""
    experiment, params, task, target, _ = load_run(run_path, checkpoint_name, device, need_data=False)
    return experiment.predict(task.model, params, [Path(f) for f in files] + list(texts), target)


def list_experiments() -> list[tuple[str, str]]:
    return registry.listing()

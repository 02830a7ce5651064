"""The Python API; the CLI is a thin layer over it.

    import torchclassics
    result = torchclassics.run("regression", lr=0.2)
    result.metrics["test_mse"], result.run_dir, result.model

A run goes through named steps: resolve the parameters (no torch yet, so a mistake is answered at
once) -> build the experiment's Task -> choose its threads -> check what only torch can judge ->
claim the run directory -> train -> the finished run's metrics, results and figures -> its summary.
Nothing is written before the run directory is claimed, and every check comes before that.

A finished run is read back by :func:`finished_run` (evaluate, predict, export, figures): the same
objects the end of training had, from the run directory.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import progress, registry
from .core import interrupts, messages
from .core.errors import UserError
from .core.waiting import choose_before_torch
from .params import parameters, sources
from .plugins import discovery
from .rundir import layout
from .rundir.reader import RunFolder
from .rundir.records import Summary

# Parameters that never make a run diverge: not named as a likely cause of a divergence.
HARMLESS = {"seed", "epochs", "gif_frames", "threads", "data_root", "download", "tsne_points", "tsne_iter",
            "shown_digits", "scatter_points", "eval_every", "eval_episodes", "eval_digits", "eval_paintings",
            "test_batch_size", "num_workers", "cache_images", "cache_max_mb", "cuda_graphs"}


@dataclass
class RunResult:
    experiment: str
    run_dir: Path
    metrics: dict
    summary: dict
    trained: Any = field(default=None, repr=False)  # the model, when training just made it
    complete_already: bool = False  # ``resume`` found the run complete: nothing trained, nothing drawn

    @property
    def model(self):
        """The trained torch.nn.Module (a run that was already complete: read from its last checkpoint)."""
        if self.trained is None:
            self.trained = finished_run(self.run_dir, layout.LAST, need_data=False).model
        return self.trained

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.metrics.items() if isinstance(v, float))
        return f"RunResult({self.experiment}, {self.run_dir}, {shown})"

    def _repr_html_(self) -> str:  # a notebook shows the metrics table and the figures
        from .results.notebook import run_html

        return run_html(self.experiment, self.run_dir, self.metrics)


params = parameters  # the parameters ``run`` would use, validated, without running anything


def run(name: str, *, out: str | Path | None = None, runs_dir: str | Path | None = None,
        device: str = "auto", resume: bool = False, quiet: bool = False, figures: bool = True,
        sets: list[str] | None = None, params_file: str | Path | None = None, report=None,
        summary_extra: dict | None = None, tensorboard: bool | None = None, **overrides: Any) -> RunResult:
    """Train, evaluate and draw one experiment; returns a :class:`RunResult`.

    Parameters come from the experiment's defaults, then ``params_file`` (a params.json or
    search's best_params.json), then ``sets`` (CLI-style ``"key=value"``) and ``overrides``.
    ``out`` is the run directory itself; without it a new ``<runs_dir>/<name>/<timestamp>`` is
    made. ``resume`` continues the run in ``out`` from its last checkpoint (only ``epochs`` may
    change). ``report(epoch, row)`` is called after every epoch (search prunes with it).
    ``quiet`` silences the progress lines on stderr. ``tensorboard``: TensorBoard curves in the run's
    tensorboard/ folder (None: when TensorBoard is installed; True: required; False: none).
    """
    from .engine.cadence import checkpoint_interval

    started = time.perf_counter()
    messages.console()
    discovery.check_name(name)
    if out is not None and _elastic_restart():
        resume = True  # torchrun restarted the job: continue from the checkpoint
    if resume and out is None:
        raise UserError.for_option("resume", True, "needs {out}, the run directory to continue.")
    if resume and params_file is not None:
        raise UserError.for_option("params_file", str(params_file), "a resumed run continues with its own "
                                   "params.json; leave {params_file} out.")
    checkpoint_interval()  # a bad $TORCHCLASSICS_CHECKPOINT_SECONDS fails before any work
    tensorboard = _tensorboard_wanted(tensorboard)
    fresh = None if resume else sources.resolve(name, params_file=params_file, sets=sets or (), overrides=overrides)
    if fresh is not None and out is not None and RunFolder(Path(out)).is_run:
        raise UserError.for_option("out", str(out), "already holds a run; choose a new folder, or add {resume} to "
                                   "continue it.")
    choose_before_torch()  # every parameter is checked: OpenMP's wait from the machine's load, if torch is not loaded
    with progress.quiet(quiet):
        return _run(name, fresh, out=out, runs_dir=runs_dir, device=device, resume=resume, figures=figures,
                    sets=sets or [], overrides=overrides, report=report, summary_extra=summary_extra,
                    started=started, tensorboard=tensorboard)


def _elastic_restart() -> bool:
    """torchrun restarted this worker after a failure (``--max-restarts``): continue, do not start over."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0


def _resumed_params(name: str, run_dir, sets: list[str], overrides: dict) -> dict:
    """A resumed run keeps its own params.json; only ``epochs`` may change (``--set`` values equal to
    the run's own are fine: the same command line with --resume, or torchrun's restart, continues).
    A run killed before it wrote params.json starts again from the experiment's parameters."""
    saved = run_dir.saved_params()
    if saved is None:
        return sources.resolve(name, sets=sets, overrides=overrides)
    source = (saved, str(run_dir.path / layout.PARAMS))
    params = sources.resolve(name, saved=source, sets=sets, overrides=overrides)
    own = sources.resolve(name, saved=source)
    changed = sorted(key for key in params if key != "epochs" and params[key] != own[key])
    if changed:
        raise UserError.for_option("resume", True, f"a resumed run continues with its own params.json; only epochs "
                                   f"may change, not {', '.join(changed)}.")
    return params


def _tensorboard_wanted(wanted: bool | None) -> bool:
    """TensorBoard curves: on when installed, unless turned off; asked for without it, refused in one line."""
    from .core.extras import install_hint, installed

    if wanted is None:
        return installed("tensorboard")
    if wanted and not installed("tensorboard"):
        raise UserError.for_option("tensorboard", True, f"TensorBoard is not installed: {install_hint('tensorboard')}.")
    return bool(wanted)


def _run(name, fresh, *, out, runs_dir, device, resume, figures, sets, overrides, report, summary_extra, started,
         tensorboard=True):
    with progress.phase("loading torch"):
        from .engine import threads
        from .engine.device import pick_device, seed_everything
        from .engine.distributed import from_env as distributed_from_env
        from .engine.precision import Precision
        from .rundir.writer import RunWriter

    target = pick_device(device)  # a bad device fails before any work
    dist = distributed_from_env()
    writer = dist is None or dist.is_writer
    target = dist.device if dist else target
    run_dir = RunWriter(Path(out), writer=writer) if resume else None
    try:
        if resume:
            run_dir.claim(resume=True)
            params = _resumed_params(name, run_dir, sets, overrides)
            done = _complete(run_dir, name, params)
            if done is not None:  # nothing to train or draw: say so at once
                return RunResult(name, run_dir.path, done.metrics, done.to_json(), complete_already=True)
        else:
            params = fresh
        Precision.check(params.get("precision", "fp32"), target)  # what the device allows, before any data loads
        with progress.phase(f"preparing {name} (data, model)"):
            experiment = registry.get(name)
            seed_everything(params["seed"])
            task = _built(experiment, name, params, target)  # data errors surface here, before anything is written
        params = {**params, "threads": threads.planned(params.get("threads"), task.model, task.cpu_threads)}
        with threads.using(params["threads"]):
            _checked(experiment, name, params, task, target)  # memory, optimizer, scheduler, precision
            if dist:
                task.train.shard(dist.rank, dist.world)
            if tensorboard and writer:
                with progress.phase("loading TensorBoard"), contextlib.suppress(ImportError):  # a second or more
                    from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (the engine says if it fails)
            interrupts.honour(terminate=True)  # imported and built: a Ctrl-C held since the start stops it here
            if run_dir is None:
                run_dir = _claim_new(name, out, runs_dir, writer, dist)
            run_dir.planned = {"experiment": name, **params}
            finished = None
            try:
                finished = _train(experiment, name, params, task, run_dir, target, dist, report, resume, tensorboard)
                with progress.phase("evaluating the trained model"):
                    summary = _summary(finished, dist, summary_extra)
                if writer and figures:
                    seed_everything(params["seed"])
                    with progress.phase("drawing figures"):
                        _draw_figures(finished, run_dir.real_folder(run_dir.figures))
            except KeyboardInterrupt as err:
                if not run_dir.started or isinstance(err, interrupts.Interrupted):
                    raise
                saved = getattr(err, "saved_epoch", int(params["epochs"]) if finished is not None else None)
                raise interrupts.Interrupted(name, run_dir.path, saved, int(params["epochs"]), getattr(err, "tag", ""),
                                             terminated=isinstance(err, interrupts.Terminated)) from err
        summary.wall_s = round(time.perf_counter() - started, 4)
        run_dir.write_summary(summary)
        run_dir.info(f"done: {summary.metrics}")
    finally:
        if run_dir is not None:
            run_dir.close()
        if dist:
            dist.close()
    return RunResult(name, run_dir.path, summary.metrics, summary.to_json(), finished.model)


def _draw_figures(run, folder: Path) -> None:
    """The experiment's figures; where it draws none (an experiment of one's own, say), the loss and metric
    curves every run has."""
    from .experiments._base import default_figures
    from .rundir.reader import image_files

    before = {path: path.stat().st_mtime_ns for path in image_files(folder, folder)}
    run.experiment.figures(run, folder)
    after = {path: path.stat().st_mtime_ns for path in image_files(folder, folder)}
    if after == before and run.fit is not None:
        default_figures(run, folder)


def _complete(run_dir, name: str, params: dict) -> Summary | None:
    """The summary of a run that has trained all its ``epochs`` with the parameters its params.json holds
    (None when there is more to do, a run stopped early or ``epochs`` raised since, or something to check)."""
    summary = run_dir.folder.summary() if run_dir.folder.has(layout.SUMMARY) else None
    if summary is None or summary.experiment != name or summary.epochs is None:
        return None
    if summary.params != params:  # params.json edited since: training's own checks answer (and refuse)
        return None
    return summary if int(summary.epochs) == int(params["epochs"]) else None


def _built(experiment, name: str, params: dict, device):
    """The experiment's Task; a plugin's build that returns something else, or parameters too large for
    this machine's memory, end in one line."""
    from .engine.loop import Task

    plugin = discovery.plugin_experiments().get(name) if discovery.is_plugin(name) else None
    try:
        if plugin is not None:  # the user's code: an exit or a bug ends in one line naming its file
            from .plugins.loading import guarded

            task = guarded(plugin, "build()", lambda: experiment.build(params, device))
        else:
            task = experiment.build(params, device)
    except (MemoryError, RuntimeError) as err:
        if not isinstance(err, MemoryError) and "allocate" not in str(err):
            raise
        raise UserError(f"{name}: not enough memory for these parameters ({' '.join(str(err).split())[:120]}); "
                        f"lower the sizes{_changed_note(name, params)}.") from None
    if not isinstance(task, Task):
        raise UserError(f"{name}: build() returned {type(task).__name__}, not a Task{_plugin_note(name)}.")
    return task


def _checked(experiment, name: str, params: dict, task, device) -> None:
    from .engine.memory import TooLarge

    try:
        experiment.check(params, task, device)
    except TooLarge as err:
        raise UserError(f"{name}: {str(err).rstrip('.')}{_changed_note(name, params)}.") from None


def _train(experiment, name, params, task, run_dir, device, dist, report, resume, tensorboard=True):
    """Train the experiment's parts; the finished run, from the live objects (nothing reloaded)."""
    from .engine.loop import Diverged, Trainer
    from .experiments.finished import FinishedRun

    goal = experiment.goal(task)

    def make_trainer(part_task, part_params=None, tag=""):
        trainer = Trainer(part_task, part_params or params, run_dir, device, objective=goal, tag=tag, distributed=dist,
                          report=report)
        trainer.tensorboard = tensorboard
        return trainer

    parts = experiment.parts(task, params)
    try:
        experiment.train(parts, make_trainer, resume)
    except Diverged as err:
        raise UserError(f"{err}; {_likeliest_cause(name, params)}") from None
    return FinishedRun(experiment, params, run_dir.path, device, parts, experiment.main_part(parts))


def _summary(run, dist, summary_extra: dict | None) -> Summary:
    """The summary of a finished run: its final metrics, the experiment's results, the facts of the run."""
    from .engine.device import seed_everything, versions

    params = run.params
    seed_everything(params["seed"])  # results drawn the same way from a run directory
    metrics = run.experiment.final_metrics(run)
    seed_everything(params["seed"])
    results = run.experiment.results(run)
    fit = run.fit
    summary = Summary(experiment=run.experiment.name, params=params, metrics=metrics, best=dict(fit.best),
                      objective=run.experiment.goal(run.task), seed=params.get("seed"), device=str(run.device),
                      world_size=dist.world if dist else 1, threads=params.get("threads"),
                      epochs=params.get("epochs"), steps=fit.steps, resumed_from_epoch=fit.resumed_from,
                      train_s=round(fit.train_s, 4), versions=versions(), run=run.path.name,
                      module=_plugin_module(run.experiment.name), results=results)
    for key, value in (summary_extra or {}).items():  # a search trial's study and number
        if key in ("study", "trial"):
            setattr(summary, key, value)
        else:
            summary.results[key] = value
    return summary


def _changed(name: str, params: dict) -> list[str]:
    """The parameters set to something other than the experiment's defaults, ``lr`` first."""
    defaults = sources.defaults(name)
    changed = [key for key in params if key not in HARMLESS and params.get(key) != defaults.get(key)]
    return sorted(changed, key=lambda key: key != "lr")


def _changed_note(name: str, params: dict) -> str:
    changed = _changed(name, params)
    return f" (you changed {', '.join(f'{k}={params[k]!r}' for k in changed)})" if changed else ""


def _likeliest_cause(name: str, params: dict) -> str:
    """What to change after a divergence: the parameters changed from the defaults, else the rate."""
    changed = _changed(name, params)
    if not changed:
        return f"try a smaller lr (now {params.get('lr')})."
    defaults = sources.defaults(name)
    shown = ", ".join(f"{k}={params[k]!r} (default {defaults.get(k)!r})" for k in changed[:3])
    return f"the likeliest cause is what differs from the defaults: {shown}."


def _plugin_note(name: str) -> str:
    plugin = discovery.plugin_experiments().get(name) if discovery.is_plugin(name) else None
    return f" (your experiment in {plugin.source})" if plugin else ""


def _claim_new(name, out, runs_dir, writer, dist):
    """The new run's folder, made and locked (rank 0 names it for every process under DDP)."""
    from .rundir.writer import RunWriter

    path = None
    if writer:
        path = Path(out) if out else layout.new_run_path(name, runs_dir)
    if dist:
        path = dist.share(path)
    run_dir = RunWriter(path, writer=writer)
    run_dir.claim(resume=False)
    run_dir.created = run_dir.created or (writer and out is None)  # new_run_path made it for this run
    return run_dir


def _plugin_module(name: str) -> str | None:
    """For an experiment of one's own named by --module or $TORCHCLASSICS_PLUGINS, where its code
    is: evaluate, predict and export of the run find it there (entry points are found anyway)."""
    plugin = discovery.plugin_experiments().get(name) if discovery.is_plugin(name) else None
    return plugin.source if plugin and plugin.origin == f"${discovery.PLUGINS_VARIABLE}" else None


# -- finished runs ---------------------------------------------------------------------------------
def finished_run(run_path: str | Path, checkpoint: str = "last", device: str = "cpu", need_data: bool = True):
    """A run directory read back as a finished run (:func:`torchclassics.experiments.finished.read`)."""
    from .experiments.finished import read

    return read(run_path, checkpoint, device, need_data)


def evaluate(run_path: str | Path, checkpoint_name: str = "best", device: str = "cpu") -> dict:
    """Held-out metrics of a run's best or last checkpoint."""
    messages.console()
    with progress.phase("loading torch"):
        import torch

        from .engine import threads
        from .engine.loop import Trainer, evaluate_task
        from .experiments.finished import threads_of
    with progress.phase("loading the run and its data"):
        run = finished_run(run_path, checkpoint_name, device, need_data=True)
    task = run.task
    with threads.using(threads_of(run)), torch.no_grad(), progress.phase("evaluating"):
        if task.evaluate is not None:  # the experiment's own held-out measure (a policy's return, a GAN's distance)
            evaluator = Trainer(task, run.parts[run.main].params, None, run.device)
            evaluator.epoch = int(run.params["epochs"]) - 1  # it measures as at the end of training
            metrics = task.evaluate(evaluator)
        elif task.test is not None:
            metrics = evaluate_task(task, task.model, run.device)
        else:
            raise UserError(f"{run.experiment.name} runs have no held-out split to evaluate.")
    return {"run": str(Path(run_path)), "checkpoint": checkpoint_name, **metrics}


def predict(run_path: str | Path, files: list[str | Path] = (), checkpoint_name: str = "best", device: str = "cpu",
            texts: list[str] = ()) -> list[dict]:
    """One dict per file (a ``Path``) or text (a ``str``): ``file``, and ``label`` + ``probability``,
    or ``error``. ``run_path`` may also be an exported .onnx file: its own metadata says how to prepare
    the files and names the classes."""
    if Path(run_path).suffix == ".onnx" and Path(run_path).is_file():
        from .deploy.described import predict_files

        messages.console()
        return predict_files(Path(run_path), [Path(f) for f in files] + list(texts))
    from .engine import threads
    from .experiments.finished import threads_of

    messages.console()
    with progress.phase("loading the run"):
        run = finished_run(run_path, checkpoint_name, device, need_data=False)
    with threads.using(threads_of(run)):
        return run.experiment.predict(run, [Path(f) for f in files] + list(texts))


def figures(run_path: str | Path, device: str = "cpu") -> list[Path]:
    """Draw a finished run's figures again, from its run directory alone: the same figures the end of
    its training drew. Returns the files written."""
    from .engine import threads
    from .engine.device import seed_everything
    from .experiments.finished import threads_of
    from .rundir.writer import RunWriter

    messages.console()
    run = finished_run(run_path, layout.LAST, device, need_data=True)
    unfinished = [tag or "the run" for tag, part in run.parts.items()
                  if part.fit is not None and len(part.fit.history) < int(run.params["epochs"])]
    if unfinished or run.summary is None:
        raise UserError(f"{run.path} has not finished training ({', '.join(unfinished) or 'no ' + layout.SUMMARY}); "
                        "resume it first.")
    writer = RunWriter(run.path)
    writer.claim_finished()
    try:
        with threads.using(threads_of(run)):
            seed_everything(run.params["seed"])
            with progress.phase("drawing figures"):
                _draw_figures(run, writer.real_folder(writer.figures))
    finally:
        writer.close()
    return RunFolder(run.path).figures()


def list_experiments() -> list[tuple[str, str]]:
    return registry.listing()

"""Hyper-parameter search with Optuna: ``torchclassics search NAME --trials N``.

Each trial is an ordinary run (``<runs root>/<name>/<study>-trial-<n>``, found by
synthesize and report like any other) whose summary names its study and
trial. The study lives in a storage that several processes share: by default an
Optuna journal file, ``<runs root>/studies/<study>/journal.log``, or any RDB URL
(``postgresql://...``) for workers on several machines. Running the same command
again continues the study.

    search("regression", trials=8, workers=2)   # 8 trials, 2 at a time, each in its own process

Every trial trains with the experiment's own seed, so trials differ only by the
hyper-parameters the sampler picked.

Every argument is checked before the study is touched, and a refused call leaves it as it was
(nothing written to the storage). A metric other than the experiment's own cannot be known to exist
without training, so a new study searching one runs its first trial outside the study and creates
the study only once that trial's run has the metric.

The modules: :mod:`.space` (the search space), :mod:`.storage` (journal and databases, where a
study's files go), :mod:`.samplers`, :mod:`.trials` (one trial), :mod:`.workers` (worker processes,
dead workers' trials); the study figures are drawn by :mod:`torchclassics.results.studies`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import uuid
from pathlib import Path

from .. import registry
from ..core import messages
from ..core.errors import UserError
from ..core.files import write_json
from ..results import studies
from ..rundir import layout
from . import baseline as baselines
from . import samplers, summary
from . import storage as storages
from . import workers as pool
from .samplers import (
    DEFAULT_TRIALS,
    SAMPLERS,
    check_sampler_installed,
    choose_sampler,
    make_pruner,
    make_sampler,
    shown_grid,
    trials_to_run,
    untried_points,
)
from .space import (
    GRID_POINTS,
    SPEC_FORMS,
    Dimension,
    check_space,
    check_space_against_study,
    load_space,
    parse_dimension,
    parse_param,
)
from .storage import (
    default_journal,
    grace_period,
    is_url,
    open_storage,
    shown_storage,
    study_files_folder,
    with_installed_driver,
)
from .summary import summary_lines
from .trials import (
    EpochReporter,
    MetricMissing,
    Plan,
    declared_objective,
    make_objective,
    objective_of,
    queue_again,
    quiet_optuna,
    raise_if_interrupted,
    say,
    warmup_and_reports,
)
from .workers import WorkerProblems, fail_dead_trials, fail_silent_trials, owner, process_alive

param_importances = studies.param_importances
LOCK_WAIT_S = 600  # a concurrent search of the same study writing its files: wait for it this long at most

# What code outside (the CLI, docs, tests, users' scripts) imports from torchclassics.search.
__all__ = ["DEFAULT_TRIALS", "GRID_POINTS", "SAMPLERS", "SPEC_FORMS", "Dimension", "EpochReporter", "MetricMissing",
           "Plan", "SearchInterrupted", "check_space", "fail_dead_trials", "finish", "load_space", "objective_of",
           "open_storage", "param_importances", "parse_dimension", "parse_param", "process_alive", "search",
           "shown_storage", "study_figures", "study_files_folder", "summary_lines", "with_installed_driver"]


def search(name: str, trials: int | None = None, space: list[str] | None = None, sets: list[str] | None = None,
           study_name: str | None = None, storage: str | None = None, workers: int = 1,
           pruner: str = "median", metric: str | None = None, direction: str | None = None,
           runs_dir: str | None = None, device: str = "auto", sampler: str | None = None,
           grid_points: int = GRID_POINTS, baseline: bool = True) -> dict:
    """Add ``trials`` trials to the study (created or continued), ``workers`` at a time.

    ``space``: ``KEY=SPEC`` strings (default: experiments/NAME/search.json); ``sets``:
    fixed ``KEY=VALUE`` overrides for every trial. ``sampler``: tpe (default), gp, botorch,
    random or grid (every point of the space, ``grid_points`` values per numeric range;
    without ``trials``, all the points not tried yet); a continued study keeps its own.
    ``baseline``: a new study's trial 0 runs the defaults (the parameters ``run`` would use, with
    ``sets``), so that the end can say whether a trial beat them.
    Returns the best trial so far (never worse than the defaults), how it compares with them, and
    where best_params.json and the figures were written; :func:`summary_lines` reads it for a person.
    Ctrl-C (or SIGTERM) stops it as :class:`SearchInterrupted`, its running trials queued again.
    """
    messages.console()
    call = summary.Call(name=name, trials=trials, space=tuple(space or ()), sets=tuple(sets or ()),
                        study_name=study_name, storage=storage, workers=workers, pruner=pruner, metric=metric,
                        direction=direction, runs_dir=runs_dir, device=device, sampler=sampler,
                        grid_points=grid_points, baseline=baseline)
    progress = Progress()
    with pool.stopped_once():
        try:
            return searched(call, progress)
        except KeyboardInterrupt:
            raise stopped(call, progress) from None


@dataclasses.dataclass
class Progress:
    """How far a search got, for the line that says how to continue it after Ctrl-C."""

    plan: Plan | None = None
    study: object = None
    trials: int | None = None   # the trials this command owes the study, once known


def searched(call: summary.Call, progress: Progress) -> dict:
    plan, dims, params = checked_plan(call.name, space=list(call.space), sets=list(call.sets),
                                      study_name=call.study_name, storage=call.storage, pruner=call.pruner,
                                      metric=call.metric, direction=call.direction, runs_dir=call.runs_dir,
                                      device=call.device)
    check_counts(call.trials, call.workers, call.grid_points, call.sampler)
    with quiet_optuna():
        opened = open_storage(plan.storage, create=False)  # a journal not there yet stays so (None)
        existing = storages.find_study(opened, plan.study)
    plan = with_sampler(plan, dims, call.sampler, call.grid_points, existing)
    check_against_study(plan, dims, existing)
    defaults = baselines.baseline(params, dims) if call.baseline and existing is None else None
    trials = trials_to_run(existing, call.trials, dict(plan.grid), extra=defaults is not None)
    workers = min(call.workers, max(trials, 1))
    plan = dataclasses.replace(plan, threads=threads_per_worker(workers, params, dims), command=uuid.uuid4().hex)
    progress.plan, progress.trials = plan, trials
    # Every check has passed: from here on the study may be written.
    announce(plan, existing, trials, workers)
    study, left = started_study(plan, opened, existing, trials, defaults if trials else None, progress)
    problems = run_trials_of_command(plan, left, min(workers, max(left, 1)), study)
    with quiet_optuna():
        # On a database only the workers seen dying are this command's to fail; the heartbeat does the rest.
        fail_dead_trials(study, problems.dead_pids if is_url(plan.storage) else None)
        result = finish(study, plan, study_files_folder(Path(plan.runs_root), plan.study, plan.storage),
                        shown_storage(plan.storage))
    raise_problems(plan, problems)
    return result


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a search; ``command`` continues it (already said in one line)."""

    def __init__(self, line: str, command: str):
        super().__init__(line)
        self.line, self.command = line, command


def stopped(call: summary.Call, progress: Progress) -> SearchInterrupted:
    """After Ctrl-C: this command's trials still running are recorded interrupted (pruned, queued again),
    and one line says how many trials are left and the command that runs them."""
    from ..core import interrupts

    with interrupts.held():  # Ctrl-C again while the study is written: it is finishing already
        done = 0
        if progress.study is not None and progress.plan is not None:
            with quiet_optuna():
                settle_interrupted(progress.study, progress.plan)
                done = summary.trials_done(progress.study, progress.plan.command)
        left = None if progress.trials is None else max(progress.trials - done, 0)
        command = summary.continue_command(call, left, grid=progress.plan is not None and bool(progress.plan.grid))
        who = progress.plan.study if progress.plan is not None else call.name
        owed = f"{done} of {progress.trials} trial(s) done; " if progress.trials is not None else ""
        line = f"search {who}: interrupted; {owed}continue with: {command}"
        messages.status(line)
    return SearchInterrupted(line, command)


def settle_interrupted(study, plan: Plan) -> list[int]:
    """This command's trials left RUNNING (stopped outside the objective, or a worker that had to be
    killed): told PRUNED through Optuna's own ``tell``, marked interrupted, and queued again."""
    from optuna.trial import TrialState

    settled = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("command") != plan.command:
            continue
        with contextlib.suppress(Exception):  # finished meanwhile: nothing to do
            study._storage.set_trial_user_attr(trial._trial_id, baselines.INTERRUPTED_ATTR, True)
            study.tell(trial.number, state=TrialState.PRUNED, skip_if_finished=True)
            queue_again(study, trial.number, trial.params, trial.user_attrs)
            settled.append(trial.number)
    return settled


def announce(plan: Plan, existing, trials: int, workers: int) -> None:
    """What this command will do; trials a dead worker left running are failed first."""
    if existing is not None:
        fail_stale_trials(plan, existing)
    grid = dict(plan.grid)
    if grid:
        say(plan, f"grid of {math.prod(len(v) for v in grid.values())} point(s): {shown_grid(grid)}; "
                  f"{untried_points(existing, grid)} not tried yet in this study")
    if not trials:
        say(plan, "every point of the grid has a finished trial in this study: nothing to run")
    else:
        say(plan, f"{trials} trial(s) of {plan.name}, {workers} at a time, sampler {plan.sampler}; {plan.metric} "
                  f"({plan.direction}); storage {shown_storage(plan.storage)}; study has "
                  f"{len(existing.trials) if existing is not None else 0} trial(s) so far")
    if not is_url(plan.storage) and os.path.lexists(plan.storage + ".lock"):
        messages.note(f"{plan.storage}.lock exists: another search is writing, or a killed one left it behind; "
                      "Optuna removes a lock untouched for 30 s, so this may wait that long")


def started_study(plan: Plan, opened, existing, trials: int, defaults: baselines.Baseline | None,
                  progress: Progress | None = None):
    """(the study, created or continued, trials still to run). A new study's first trial is the defaults
    (``defaults``; None: none). A metric the experiment does not declare is first shown by a trial run
    outside the study (see :func:`first_trial`)."""
    first = None
    if defaults is not None:
        say(plan, defaults.announcement(len(existing.trials) if existing is not None else 0))
    if trials and not metric_is_known(plan, existing):
        first = first_trial(plan, existing, defaults)  # refuses, leaving the study untouched, if no metric
        trials -= 1
        defaults = None  # the first trial ran them
    with quiet_optuna():
        study = open_study(plan, opened if opened is not None else open_storage(plan.storage))
        if progress is not None:
            progress.study = study
        if first is not None:
            study.add_trial(first)
        if defaults is not None:
            # skip_if_exists: two commands starting the same new study at once queue the defaults once
            study.enqueue_trial(defaults.params, user_attrs={baselines.BASELINE_ATTR: True}, skip_if_exists=True)
    return study, trials


def raise_problems(plan: Plan, problems: WorkerProblems) -> None:
    for death in problems.deaths:
        messages.warn(f"search {plan.study}: {death}")
    for what, message in problems.errors:
        if what == "bug":
            raise RuntimeError(f"a search worker failed:\n{message}")
        raise UserError(message)


# -- every check, before anything is written ---------------------------------------------------------
def checked_plan(name: str, *, space, sets, study_name, storage, pruner, metric, direction, runs_dir, device):
    """The plan (without sampler and threads yet), the space and the fixed parameters; a UserError for
    any argument that is wrong, before anything is written."""
    from ..engine.device import pick_device

    experiment = registry.get(name)
    pick_device(device)  # a bad device fails before any trial
    samplers.check_pruner(pruner)
    dims = load_space(name, space)
    params = check_space(name, dims, list(sets or []))
    metric, direction = objective_of(experiment, metric, direction)
    study_name = check_study_name(name if study_name is None else study_name)
    root = layout.runs_root(runs_dir)
    storage = storage or str(default_journal(root, study_name))
    if not is_url(storage):
        storages.check_journal_file(storage)
    warmup, every = warmup_and_reports(params.get("epochs"))
    plan = Plan(name=name, study=study_name, storage=storage, space=tuple(dims), sets=tuple(sets or []),
                metric=metric, direction=direction, pruner=pruner, warmup=warmup, report_every=every,
                runs_root=str(root), device=device)
    return plan, dims, params


def check_counts(trials: int | None, workers: int, grid_points: int, sampler: str | None) -> None:
    if trials is not None and trials < 1:
        raise UserError.for_option("trials", trials, "must be at least 1.")
    if workers < 1:
        raise UserError.for_option("workers", workers, "must be at least 1.")
    if grid_points < 2:
        raise UserError.for_option("grid_points", grid_points, "a range needs at least 2 points (its ends).")
    if sampler is not None:
        check_sampler_installed(sampler)


def check_study_name(name: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError.for_option("study_name", name, "use letters, digits, '.', '_' and '-' (it names a folder).")
    return name


def with_sampler(plan: Plan, dims: list[Dimension], asked: str | None, grid_points: int, existing) -> Plan:
    """The plan with its sampler (the study's own when it has one) and, for a grid, its points."""
    kind = choose_sampler(asked, samplers.remembered_sampler(existing), plan.study)
    check_sampler_installed(kind)  # the study's own may be botorch
    grid = {dim.key: tuple(dim.grid(grid_points)) for dim in dims} if kind == "grid" else {}
    return dataclasses.replace(plan, sampler=kind, grid=tuple(grid.items()))


REMEMBERED = ("experiment", "metric", "sampler")  # what a study keeps and a continuation must match


def remembered(plan: Plan) -> dict:
    return {"experiment": plan.name, "metric": plan.metric, "sampler": plan.sampler}


def check_against_study(plan: Plan, dims: list[Dimension], study) -> None:
    """A continued study must be the same experiment, metric, direction, sampler and kinds of range."""
    if study is None:
        return
    attrs = study.user_attrs
    for key, value in remembered(plan).items():
        if key in attrs and attrs[key] != value:
            option = {"experiment": "name", "sampler": "sampler"}.get(key, key)
            raise UserError.for_option(option, value, f"study '{plan.study}' searches {key} '{attrs[key]}', not "
                                                      f"'{value}'; choose another study name or drop the override.")
    if study.direction.name.lower() != plan.direction:
        kept = study.direction.name.lower()
        raise UserError.for_option("direction", plan.direction, f"study '{plan.study}' is set to {kept}; choose "
                                                                "another study.")
    check_space_against_study(study, dims)


def metric_is_known(plan: Plan, study) -> bool:
    """The experiment's own objective exists in every run; a study remembers only a metric that was checked."""
    declared = declared_objective(registry.get(plan.name))
    return plan.metric == declared.metric or (study is not None and study.user_attrs.get("metric") == plan.metric)


def threads_per_worker(workers: int, params: dict, dims: list[Dimension]) -> int | None:
    """K workers on C cores: C/K CPU threads each, not C each fighting for the cores; passed to every
    trial as its ``threads`` (so its params.json records it). One worker, a ``threads`` the user set,
    a searched one, or an experiment of one's own without the parameter: the run's own."""
    if workers < 2 or "threads" not in params or params["threads"] is not None or any(d.key == "threads" for d in dims):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // workers)


def fail_stale_trials(plan: Plan, study) -> None:
    """Trials that a dead worker left running are failed first (on a database: queued again)."""
    on_database = is_url(plan.storage)
    with quiet_optuna():
        stale = fail_silent_trials(study) if on_database else fail_dead_trials(study)
    if stale:
        many = len(stale) > 1
        why = (f"sent no heartbeat for {grace_period()} s (a worker died); marked failed and queued again"
               if on_database else f"{'were' if many else 'was'} left running by a process that ended; marked failed")
        say(plan, f"trial{'s' if many else ''} {', '.join(map(str, stale))} {why}")


# -- the study -----------------------------------------------------------------------------------------
def open_study(plan: Plan, storage):
    """Create the study, or continue it, and let it remember its experiment, metric and sampler."""
    import optuna

    study = optuna.create_study(study_name=plan.study, storage=storage, direction=plan.direction,
                                sampler=make_sampler(plan.sampler, plan.grid),
                                pruner=make_pruner(plan.pruner, plan.warmup), load_if_exists=True)
    check_against_study(plan, list(plan.space), study)  # another command may have created it meanwhile
    for key, value in remembered(plan).items():
        if key not in study.user_attrs:
            study.set_user_attr(key, value)
    return study


def first_trial(plan: Plan, existing, defaults: baselines.Baseline | None = None):
    """The first trial of a study searching a metric the experiment does not declare, run outside the
    study (in memory; the defaults when given) and returned once its run shows the metric, to be added
    to the study. Refused otherwise, with the study untouched and the trial's run folder removed (its
    summary would name a trial the study does not have)."""
    import optuna

    number = len(existing.trials) if existing is not None else 0
    out = plan.trial_folder(number)
    made = [folder for folder in out.parents if not folder.exists()]  # deepest first: removed if refused
    say(plan, f"trial {number} runs first, alone: {plan.metric} is not {plan.name}'s own metric, and the study "
              "is written only once a run shows it")
    reporters: list[EpochReporter] = []
    added = False
    try:
        with quiet_optuna():
            trial_study = optuna.create_study(direction=plan.direction, sampler=make_sampler(plan.sampler, plan.grid),
                                              pruner=optuna.pruners.NopPruner())
            if defaults is not None:
                trial_study.enqueue_trial(defaults.params, user_attrs={baselines.BASELINE_ATTR: True})
            try:
                trial_study.optimize(make_objective(plan, owner(), number=number, reporters=reporters), n_trials=1,
                                     catch=(UserError,), callbacks=[raise_if_interrupted])
            except MetricMissing as err:
                raise err.user_error(f" Nothing was written to study '{plan.study}'.") from None
        trial = trial_study.trials[0]
        if trial.state != optuna.trial.TrialState.COMPLETE and not any(r.seen for r in reporters):
            reason = trial.system_attrs.get("fail_reason") or trial.state.name.lower()
            raise UserError.for_option("metric", plan.metric, f"cannot be checked: the first trial ended before any "
                                       f"of its rows held it ({str(reason).splitlines()[0]}). Nothing was written to "
                                       f"study '{plan.study}'; try again, or check the metric's name.")
        added = True
        return trial
    finally:
        if not added:
            shutil.rmtree(out, ignore_errors=True)
            for folder in made:
                with contextlib.suppress(OSError):  # not empty after all (another command's): left
                    folder.rmdir()


def run_trials_of_command(plan: Plan, trials: int, workers: int, study) -> WorkerProblems:
    if not trials:
        return WorkerProblems()
    if workers == 1:
        try:
            pool.run_trials(plan, pool.countdown(trials))
        except MetricMissing as err:
            return WorkerProblems(errors=[("user", str(err.user_error()))])
        return WorkerProblems()
    return pool.run_workers(plan, trials, workers, study)


# -- the end of a search --------------------------------------------------------------------------
def study_figures(study, folder: Path, metric: str | None = None) -> dict:
    """The study's PNGs in ``folder`` (see results.studies.write_pngs); reads the study only."""
    return studies.write_pngs(study, Path(folder))


def best_record(study, plan: Plan) -> tuple[dict, dict]:
    """best_params.json: the study's best as the storage holds it now, never a worse model than the
    defaults (when no trial beat them, their own trial: ``best_is_baseline``); and the comparison."""
    trials = study.get_trials(deepcopy=False)
    seen = summary.compared(trials, plan.direction)
    best = seen["best"]
    record = {
        "experiment": plan.name,
        "study": plan.study,
        "metric": plan.metric,
        "direction": plan.direction,
        "sampler": plan.sampler,
        "best_value": best.value if best else None,
        "best_params": best.params if best else {},
        "best_trial": best.number if best else None,
        "n_trials": len(trials),
        "best_run_dir": best.user_attrs.get("run_dir") if best else None,
        "importances": studies.param_importances(study),
        "baseline_trial": seen["baseline_trial"],
        "baseline_value": seen["baseline_value"],
        "best_is_baseline": seen["best_is_baseline"],
        "vs_baseline_pct": seen["vs_baseline_pct"],
    }
    if seen["best_is_baseline"]:
        record["note"] = (f"no trial beat the defaults: these are the defaults' parameters (trial "
                          f"{seen['baseline_trial']})")
    return record, seen


def finish(study, plan: Plan, folder: Path, storage_shown: str) -> dict:
    """best_params.json and the figures in the study's folder; the dict the CLI prints.

    Several searches of one study may end at once: each reads the study and writes under the folder's
    lock, so the last to write read the study last (its best is the study's best), and each file is
    replaced atomically."""
    from filelock import FileLock

    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / layout.LOCK), timeout=LOCK_WAIT_S), quiet_optuna():
        record, seen = best_record(study, plan)
        best_path = write_json(folder / layout.BEST_PARAMS, record)
        figures = studies.write_pngs(study, folder)
        states: dict[str, int] = {}
        stopped_trials = []  # pruned by Ctrl-C, not by the pruner: queued again
        for trial in study.get_trials(deepcopy=False):
            states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
            if trial.user_attrs.get(baselines.INTERRUPTED_ATTR):
                stopped_trials.append(trial.number)
    best = seen["best"]
    sets = best.user_attrs.get("sets", list(plan.sets)) if best is not None else list(plan.sets)
    return {"study": plan.study, "storage": storage_shown, "metric": plan.metric, "direction": plan.direction,
            "sampler": plan.sampler, "n_trials": record["n_trials"], "trials_by_state": states,
            "best_value": record["best_value"], "best_params": record["best_params"],
            "best_trial": record["best_trial"], "best_run_dir": record["best_run_dir"],
            "importances": record["importances"], "best_params_path": str(best_path),
            **{key: seen[key] for key in ("baseline_trial", "baseline_state", "baseline_value", "baseline_params",
                                          "best_is_baseline", "vs_baseline_pct", "best_other")},
            "interrupted_trials": stopped_trials,
            "retrain_command": summary.retrain_command(plan.name, best_path, sets),
            **{f"{key}_path": str(path) for key, path in figures.items()}}

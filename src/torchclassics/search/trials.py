"""One trial: the plan every worker follows, the objective (an ordinary run in
``<runs root>/<experiment>/<study>-trial-<n>``), the epoch reporter that lets Optuna prune, and the
trial marker (rundir.records.TrialMarker) saying how the trial ended."""
from __future__ import annotations

import contextlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..core import messages
from ..core.errors import UserError
from ..rundir import layout
from ..rundir.metrics import Objective, guessed_mode
from ..rundir.reader import RunFolder
from ..rundir.records import TrialMarker
from ..rundir.writer import write_trial_marker
from .baseline import BASELINE_ATTR, INTERRUPTED_ATTR, RERUN_ATTR

REPORTS_PER_TRIAL = 50


@dataclass(frozen=True)
class Plan:
    """Everything a worker process needs, picklable (workers are spawned)."""

    name: str
    study: str
    storage: str          # an RDB URL, or the path of a journal file
    space: tuple
    sets: tuple
    metric: str
    direction: str
    pruner: str
    warmup: int
    runs_root: str
    device: str
    threads: int | None = None  # CPU threads of each trial when workers share the cores; None: the run's own
    report_every: int = 1  # epochs between two intermediate values
    sampler: str = "tpe"  # one of samplers.SAMPLERS
    grid: tuple = ()      # the grid sampler's (key, values) pairs
    command: str = ""     # this search command's id, kept with each of its trials (an interruption counts them)

    def trial_folder(self, number: int) -> Path:
        return layout.trial_path(self.runs_root, self.name, self.study, number)


def warmup_and_reports(epochs) -> tuple[int, int]:
    """(epochs before pruning may start, epochs between two reports). Each report is a locked,
    fsync'ed journal write: ~50 per trial are plenty to prune on, and the same steps in every trial
    keep the median comparable."""
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        return 1, 1
    return max(1, epochs // 10), max(1, epochs // REPORTS_PER_TRIAL)


# -- the objective's metric and direction ---------------------------------------------------------
def declared_objective(experiment) -> Objective:
    objective = experiment.objective
    return objective if isinstance(objective, Objective) else Objective(*objective)


def objective_of(experiment, metric: str | None, direction: str | None) -> tuple[str, str]:
    """(metric, "minimize" | "maximize"): the experiment's unless overridden; a metric named by the
    user gets the direction its name suggests (the rule synthesize sorts by)."""
    if direction not in (None, "minimize", "maximize"):
        raise UserError.for_option("direction", direction, "choose minimize or maximize.")
    declared = declared_objective(experiment)
    if metric is None or metric == declared.metric:
        return declared.metric, direction or declared.direction
    return metric, direction or Objective(metric, guessed_mode(metric)).direction


def row_value(row: dict, metric: str) -> float | None:
    """The objective in one epoch's metrics row, or None when the rows do not carry it."""
    value = row.get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class MetricMissing(Exception):
    """The objective metric is not among a finished run's metrics: stop the whole search."""

    def __init__(self, metric: str, experiment: str, names):
        self.metric, self.experiment, self.names = metric, experiment, sorted(names)
        super().__init__(f"metric={metric!r}: not among the metrics of {experiment} ({', '.join(self.names)}).")

    def user_error(self, consequence: str = "") -> UserError:
        return UserError.for_option("metric", self.metric, f"not among the metrics of {self.experiment} "
                                                           f"({', '.join(self.names)}).{consequence}")


# -- while a trial trains ------------------------------------------------------------------------
class EpochReporter:
    """``report(epoch, row)`` for api.run: hands the objective to Optuna every ``every`` epochs,
    and prunes when told. ``seen`` tells whether any row carried the metric at all."""

    def __init__(self, trial, metric: str, every: int = 1):
        self.trial, self.metric, self.every = trial, metric, every
        self.epoch, self.value = None, None
        self.seen = False
        self.reported: set[int] = set()

    def __call__(self, epoch: int, row: dict) -> None:
        import optuna

        value = row_value(row, self.metric)
        self.seen = self.seen or value is not None
        if value is None or epoch in self.reported or not math.isfinite(value) or epoch % self.every:
            return  # a row without the metric, a second model's row for the same epoch, or not due
        self.reported.add(epoch)
        self.epoch, self.value = epoch, value
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({self.metric}={value:.4g})")


# -- messages ------------------------------------------------------------------------------------
def say(plan: Plan, message: str) -> None:
    messages.status(f"search {plan.study}: {message}")


def shown_value(value) -> str:
    """Four significant digits for a float, JSON's spelling for the rest (null, true; a string bare)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def shown_params(params: dict) -> str:
    return " ".join(f"{k}={shown_value(v)}" for k, v in params.items())


@contextlib.contextmanager
def quiet_optuna():
    """Optuna logs each failed trial with a traceback; our own one-line messages say enough."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():  # GP, BoTorch and the plots are "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


# -- one trial -----------------------------------------------------------------------------------
def threads_of(plan: Plan, run_path: Path) -> int | None:
    """The CPU threads the trial trained with: the plan's, else what its params.json recorded."""
    if plan.threads:
        return plan.threads
    with contextlib.suppress(UserError, OSError, ValueError):
        threads = RunFolder(run_path).params().get("threads")
        return threads if isinstance(threads, int) and not isinstance(threads, bool) else None
    return None


def mark(plan: Plan, run_path: Path, number: int, params: dict, state: str, **details) -> None:
    """The trial marker: which study and trial, how it ended, and with how many CPU threads."""
    write_trial_marker(run_path, TrialMarker(study=plan.study, trial=number, state=state, metric=plan.metric,
                                             params=dict(params), threads=threads_of(plan, run_path), **details))


def raise_if_interrupted(study, trial) -> None:
    """Optuna callback, after each trial is recorded: stop the loop when the trial was interrupted."""
    if trial.user_attrs.get(INTERRUPTED_ATTR):
        raise KeyboardInterrupt


def interrupted(trial, reason: str) -> None:
    """Ctrl-C or SIGTERM stopped ``trial`` mid-run. Optuna has no INTERRUPTED state, and FAIL (what it
    records for a KeyboardInterrupt) would count against the parameters and stay in the study for good.
    So the trial ends PRUNED (the objective raises TrialPruned: Optuna's own path, its last reported
    value kept), marked ``interrupted``, and its parameters are queued again as a WAITING trial (as
    Optuna's RetryFailedTrialCallback does for a dead one), which the next search runs first."""
    trial.set_user_attr(INTERRUPTED_ATTR, True)
    queue_again(trial.study, trial.number, trial.params, trial.user_attrs)


def queue_again(study, number: int, params: dict, user_attrs: dict) -> None:
    """An interrupted trial's parameters as a WAITING trial, run first by the next trial asked for; the
    defaults' trial stays the defaults'. Not skipped as existing: its interrupted twin has the same params."""
    again = {RERUN_ATTR: number, **({BASELINE_ATTR: True} if user_attrs.get(BASELINE_ATTR) else {})}
    study.enqueue_trial(dict(params), user_attrs=again, skip_if_exists=False)


def why_stopped(err: KeyboardInterrupt) -> str:
    """Why a trial's run stopped: the search's own reason (a worker's parent gone, SIGTERM), not the single
    run's advice to resume it that ``run`` wraps the interrupt in (a search continues as a search)."""
    from ..core.interrupts import Interrupted

    if isinstance(err, Interrupted):
        err = err.__cause__ or KeyboardInterrupt()
    return str(err) or "interrupted"


def make_objective(plan: Plan, stamp: dict, number: int | None = None, reporters: list | None = None):
    """Optuna's objective: train one run with the sampled parameters, return its metric.

    ``stamp``: the worker's host and process, kept with the trial (a dead worker's trials are found
    by it). ``number``: the trial's number in the study when it is not the trial's own (a first
    trial run outside the study, see search.first_trial). ``reporters`` collects each trial's
    EpochReporter for the caller. Run it with ``callbacks=[raise_if_interrupted]``."""
    import optuna

    from ..api import run

    def objective(trial) -> float:
        n = trial.number if number is None else number
        out = plan.trial_folder(n)
        reporter = EpochReporter(trial, plan.metric, plan.report_every)
        sampled: dict = {}
        try:
            for key, value in {**stamp, "command": plan.command, "sets": list(plan.sets)}.items():
                trial.set_user_attr(key, value)
            sampled.update({dim.key: dim.suggest(trial) for dim in plan.space})
            trial.set_user_attr("run_dir", str(out.resolve()))
            if reporters is not None:
                reporters.append(reporter)
            threads = {"threads": plan.threads} if plan.threads else {}
            result = run(plan.name, runs_dir=plan.runs_root, out=out, device=plan.device, quiet=True,
                         figures=False, sets=list(plan.sets), report=reporter,
                         summary_extra={"study": plan.study, "trial": n}, **threads, **sampled)
        except optuna.TrialPruned as err:
            mark(plan, out, n, trial.params, "pruned", epoch=reporter.epoch, value=reporter.value)
            say(plan, f"trial {n} {err}: {shown_params(sampled)}")
            raise
        except KeyboardInterrupt as err:  # Ctrl-C, SIGTERM: the search stops; the trial is not at fault
            reason = why_stopped(err)
            mark(plan, out, n, trial.params, "interrupted", reason=reason, epoch=reporter.epoch, value=reporter.value)
            interrupted(trial, reason)
            raise optuna.TrialPruned(reason) from None
        except Exception as err:
            mark(plan, out, n, trial.params, "failed", reason=str(err) or type(err).__name__)
            say(plan, f"trial {n} failed: {err}")
            raise
        if plan.metric not in result.metrics:
            raise MetricMissing(plan.metric, plan.name, result.metrics)
        value = float(result.metrics[plan.metric])
        mark(plan, out, n, trial.params, "complete", value=value)
        say(plan, f"trial {n} {plan.metric}={value:.6g}: {shown_params(sampled)} ({out})")
        return value

    return objective

"""Hyper-parameter search with Optuna: ``torchclassics search NAME --trials N``.

Each trial is an ordinary run (``<runs root>/<name>/<study>-trial-<n>``, found by
synthesize and report like any other) whose summary.json names its study and
trial. The study lives in a storage that several processes share: by default an
Optuna journal file, ``<runs root>/studies/<study>/journal.log`` (Optuna's advice
over SQLite for parallel workers on one machine), or any RDB URL
(``postgresql://...``) for workers on several machines. Running the same command
again continues the study.

    search("regression", trials=8, workers=2)   # 8 trials, 2 at a time, each in its own process

Every trial trains with the experiment's own seed, so trials differ only by the
hyper-parameters the sampler picked.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import multiprocessing
import os
import re
import socket
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config, registry
from .engine.device import pick_device
from .core.files import write_json
from .rundir.layout import runs_root
from .errors import UserError
from .synthesize import higher_is_better

SPEC_FORMS = ("loguniform:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH[:STEP], logint:LOW:HIGH, "
              "choice:V1,V2,... (e.g. lr=loguniform:1e-4:1e-1, hidden=int:4:64, batch_size=choice:32,64,128)")
_KINDS = ("loguniform", "uniform", "int", "logint", "choice")
SAMPLERS = ("tpe", "gp", "botorch", "random", "grid")
DEFAULT_TRIALS = 10   # trials of a search that does not say, except a grid (its size)
GRID_POINTS = 3       # values of a numeric range in a grid, ends included
# On an RDB storage a trial silent (no heartbeat) for the grace period is failed by the next
# worker that starts a trial, on any machine, and queued again; $TORCHCLASSICS_SEARCH_GRACE_S
# sets it (tests lower it), heartbeats come four times per grace period.
GRACE_ENV, GRACE_S = "TORCHCLASSICS_SEARCH_GRACE_S", 120
RETRIES = 2           # a trial whose worker died this many times more is left failed: the trial is the problem
_REPORTS_PER_TRIAL = 50


# -- the search space ------------------------------------------------------------
@dataclass(frozen=True)
class Dimension:
    """One searched parameter: ``key=kind:...`` parsed."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: int | None = None
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.kind == "logint")
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "loguniform")

    def distribution(self):
        """The Optuna distribution ``suggest`` asks for (to check it against earlier trials)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind in ("int", "logint"):
            return IntDistribution(self.low, self.high, step=self.step or 1, log=self.kind == "logint")
        return FloatDistribution(self.low, self.high, log=self.kind == "loguniform")

    def spec(self) -> str:
        if self.kind == "choice":
            return "choice:" + ",".join(json.dumps(c) if not isinstance(c, str) else c for c in self.choices)
        return f"{self.kind}:{self.low}:{self.high}" + (f":{self.step}" if self.step else "")

    def corners(self) -> list:
        """The values that, if accepted by the experiment, make every sample acceptable."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def grid(self, points: int) -> list:
        """The values a grid search tries: the choices, or ``points`` values across the range,
        ends included (evenly, or evenly in log scale), integers on the range's steps."""
        import numpy as np

        if self.kind == "choice":
            return list(self.choices)
        spread = np.geomspace if self.kind in ("loguniform", "logint") else np.linspace
        if self.kind in ("int", "logint"):
            values = list(range(self.low, self.high + 1, self.step or 1))
            if len(values) <= points:
                return values
            wanted = spread(self.low, values[-1], points)
            return sorted({min(values, key=lambda v: abs(v - w)) for w in wanted})  # a log grid may repeat one
        # Six significant digits read better in a trial list than 0.010000000000000002.
        return [min(max(float(f"{v:.6g}"), self.low), self.high) for v in spread(self.low, self.high, points)]


def _number(text: str, integer: bool, where: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{where}: '{text}' is not a number. Allowed forms: {SPEC_FORMS}.") from None
    if integer:
        if not value.is_integer():
            raise UserError(f"{where}: '{text}' is not an integer.")
        return int(value)
    return value


def _choice_value(text: str, where: str) -> Any:
    """JSON values (numbers, true/false, "quoted") or, failing that, the bare string."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if value is not None and not isinstance(value, (bool, int, float, str)):
        raise UserError(f"{where}: choice '{text}' must be a number, string or boolean.")
    return value


def parse_dimension(key: str, spec: str) -> Dimension:
    """``("lr", "loguniform:1e-4:1e-1")`` -> Dimension; a UserError listing the forms otherwise."""
    where = f"search space {key}={spec}"
    if not isinstance(spec, str):
        raise UserError(f"search space {key}: expected a string such as \"loguniform:1e-4:1e-1\", got {json.dumps(spec)}.")
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in _KINDS:
        raise UserError(f"{where}: unknown kind '{kind}'. Allowed forms: {SPEC_FORMS}.")
    if kind == "choice":
        choices = tuple(_choice_value(v.strip(), where) for v in rest.split(",") if v.strip())
        if not choices:
            raise UserError(f"{where}: no choices. Write e.g. {key}=choice:32,64,128.")
        return Dimension(key, kind, choices=choices)
    parts = rest.split(":") if rest else []
    integer = kind in ("int", "logint")
    allowed = (2, 3) if kind == "int" else (2,)
    if len(parts) not in allowed:
        raise UserError(f"{where}: expected {kind}:LOW:HIGH{'[:STEP]' if kind == 'int' else ''}. "
                        f"Allowed forms: {SPEC_FORMS}.")
    low, high = (_number(p.strip(), integer, where) for p in parts[:2])
    step = _number(parts[2].strip(), True, where) if len(parts) == 3 else None
    if not low < high:
        raise UserError(f"{where}: LOW ({low}) must be smaller than HIGH ({high}).")
    if kind in ("loguniform", "logint") and low <= 0:
        raise UserError(f"{where}: a log scale needs LOW > 0 (got {low}).")
    if step is not None and step <= 0:
        raise UserError(f"{where}: STEP must be > 0 (got {step}).")
    return Dimension(key, kind, low, high, step)


def parse_param(text: str) -> Dimension:
    """One ``--param KEY=SPEC``."""
    key, sep, spec = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--param '{text}': expected KEY=SPEC, e.g. --param lr=loguniform:1e-4:1e-1.")
    return parse_dimension(key.strip(), spec.strip())


def load_space(name: str, params: list[str] | None) -> list[Dimension]:
    """The ``--param`` entries when there are any (they replace search.json), else the
    experiment's search.json (the user's ./experiments/NAME/search.json, else the package's)."""
    if params:
        space = [parse_param(p) for p in params]
        source = "--param"
    else:
        path = config.experiment_file(name, "search.json")
        if path is None:
            raise UserError(f"no search space for '{name}': pass --param KEY=SPEC (e.g. --param "
                            f"lr=loguniform:1e-4:1e-1), or write experiments/{name}/search.json in your project "
                            f"(an object key -> spec; `torchclassics init {name}` starts one). Forms: {SPEC_FORMS}.")
        space = [parse_dimension(key, spec) for key, spec in config.read_json(path).items()]
        source = str(path)
    keys = [d.key for d in space]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise UserError(f"{source}: {', '.join(repeated)} given more than once.")
    if not space:
        raise UserError(f"{source}: the search space is empty; give at least one KEY=SPEC.")
    return space


def check_space(name: str, space: list[Dimension], sets: list[str]) -> dict:
    """Fail before any trial starts: every key must exist and every corner of its range
    must be a valid value (type, range). Returns the fixed parameters."""
    both = sorted({config.parse_set(s)[0] for s in sets} & {d.key for d in space})
    if both:
        raise UserError(f"{', '.join(both)}: both fixed (--set) and searched (--param/search.json); keep one.")
    params = config.resolve(name, sets=sets)
    for dim in space:
        for value in dim.corners():
            try:
                config.resolve(name, sets=sets, overrides={dim.key: value})
            except UserError as err:
                raise UserError(f"search space {dim.key}: {err}") from None
    return params


# -- objective and direction --------------------------------------------------------
def objective_of(experiment, metric: str | None, direction: str | None) -> tuple[str, str]:
    """(metric, "minimize" | "maximize"): the experiment's unless overridden."""
    default_metric, mode = experiment.objective
    if direction not in (None, "minimize", "maximize"):
        raise UserError(f"--direction {direction}: choose minimize or maximize.")
    if metric is None or metric == default_metric:
        return default_metric, direction or ("maximize" if mode == "max" else "minimize")
    guessed = "maximize" if higher_is_better(metric) else "minimize"  # the rule synthesize sorts by
    return metric, direction or guessed


def row_value(row: dict, metric: str) -> float | None:
    """The objective in one epoch's metrics row, or None when the rows do not carry it."""
    value = row.get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# -- the plan every worker follows ------------------------------------------------------
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
    threads: int = 0      # torch threads per worker; 0 leaves torch's default
    report_every: int = 1  # epochs between two intermediate values
    sampler: str = "tpe"  # one of SAMPLERS
    grid: tuple = ()      # the grid sampler's (key, values) pairs


def _check_study_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"--study '{name}': use letters, digits, '.', '_' and '-' (it names a folder).")
    return name


def is_url(storage: str) -> bool:
    return "://" in storage


def grace_period() -> int:
    """Seconds without a heartbeat after which a trial on an RDB storage counts as dead."""
    text = os.environ.get(GRACE_ENV, "").strip()
    if not text:
        return GRACE_S
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise UserError(f"{GRACE_ENV}={text}: expected a whole number of seconds, at least 2 (default {GRACE_S}).")
    return value


def _retry_callback() -> dict:
    """Optuna's retry of a trial failed for silence, as RDBStorage's keyword (renamed in Optuna 5)."""
    from optuna import storages

    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        return {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=RETRIES)}
    return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=RETRIES)}


def with_installed_driver(url: str) -> str:
    """``postgresql://`` with the driver that is installed: SQLAlchemy 2.0 reads it with psycopg2,
    2.1 with psycopg 3, and either serves Optuna."""
    import importlib.util

    scheme, _, rest = url.partition("://")
    if scheme != "postgresql":
        return url
    for driver in ("psycopg2", "psycopg"):
        if importlib.util.find_spec(driver):
            return f"postgresql+{driver}://{rest}"
    return url  # no driver: SQLAlchemy's ImportError says so, below


def _rdb_storage(url: str, attempts: int = 5, **kwargs):
    """Optuna's RDBStorage; tried again when another machine was creating the tables at the same
    moment (PostgreSQL's CREATE TABLE is not safe to race: one of two fresh workers fails with a
    duplicate key; once the tables exist, opening them is)."""
    import random
    import time

    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 + random.random())  # let the other finish; not both again in step


def open_storage(storage: str):
    """An Optuna storage: an RDB URL (with heartbeats, so a killed trial ends FAILED and is run
    again), or a journal file."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage

    if not is_url(storage):
        # Absolute: Optuna's lock is a symlink to this path, and it can only tell a stale lock
        # (left by a killed worker) when that link resolves; a relative one never does.
        path = Path(storage).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Symlink locks need a privilege on Windows; Optuna advises the open-file lock there.
        lock = JournalFileOpenLock(str(path)) if os.name == "nt" else None
        return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
    grace = grace_period()
    try:
        with warnings.catch_warnings():  # heartbeat is "experimental" in Optuna but long in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _rdb_storage(with_installed_driver(storage), heartbeat_interval=max(1, grace // 4),
                                grace_period=grace, **_retry_callback())
    except ImportError as err:
        raise UserError(f"--storage {shown_storage(storage)}: the database driver is missing ({err}). "
                        "For PostgreSQL: pip install \"torchclassics[postgres]\" (psycopg2-binary).") from None
    except Exception as err:  # sqlalchemy's errors: bad URL, unreachable server, refused login
        raise UserError(f"--storage {shown_storage(storage)}: cannot open the study database: "
                        f"{str(err).splitlines()[0]}") from None


def shown_storage(storage: str) -> str:
    """The storage for printing: a URL without its password."""
    if not is_url(storage):
        return storage
    try:
        from sqlalchemy.engine import make_url

        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy understands; nothing secret to hide then
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", storage)


def make_pruner(kind: str, warmup: int):
    import optuna

    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        # Early epochs are noisy: a slow starter is not yet a bad trial.
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    raise UserError(f"--pruner {kind}: choose median or none.")


# -- samplers ------------------------------------------------------------------------------
# Trials sampled at random before a model (TPE, Gaussian process, BoTorch) picks: Optuna's default.
STARTUP_TRIALS = 10


def check_sampler_installed(kind: str) -> None:
    """BoTorch is an optional extra: say how to get it before any trial starts."""
    if kind not in SAMPLERS:
        raise UserError(f"--sampler {kind}: choose one of {', '.join(SAMPLERS)}.")
    if kind == "botorch":
        try:
            with warnings.catch_warnings():  # its libraries' own deprecations (torch.jit.script), not the user's
                warnings.simplefilter("ignore", FutureWarning)
                import botorch  # noqa: F401
                from optuna_integration import BoTorchSampler  # noqa: F401
        except ImportError:
            raise UserError('--sampler botorch needs BoTorch and optuna-integration: '
                            'pip install "torchclassics[botorch]".') from None


def make_sampler(kind: str = "tpe", grid: tuple = ()):
    import optuna

    if kind == "tpe":
        # constant_liar: parallel workers do not all sample the same promising point.
        return optuna.samplers.TPESampler(constant_liar=True, n_startup_trials=STARTUP_TRIALS)
    if kind == "gp":
        return optuna.samplers.GPSampler(n_startup_trials=STARTUP_TRIALS)
    if kind == "botorch":
        check_sampler_installed(kind)  # imported there, quietly
        from optuna_integration import botorch

        # q-log-EI counts the points that running trials (other workers) test, so they do not
        # all get the same one; older optuna-integration lacks it: its default, one point at a time.
        qlogei = getattr(botorch, "qlogei_candidates_func", None)
        return botorch.BoTorchSampler(n_startup_trials=STARTUP_TRIALS, candidates_func=qlogei,
                                      consider_running_trials=qlogei is not None)
    if kind == "random":
        return optuna.samplers.RandomSampler()
    # The same seed in every worker, on every machine: they share one order of the grid's points.
    return optuna.samplers.GridSampler(dict(grid), seed=0)


def remembered_sampler(storage, study_name: str) -> str | None:
    """The sampler an existing study was searched with; "tpe" for one from before samplers were
    remembered (TPE was the only one); None for a new study."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return None
    remembered = storage.get_study_user_attrs(study_id).get("sampler")
    return remembered or ("tpe" if storage.get_n_trials(study_id) else None)


def choose_sampler(asked: str | None, remembered: str | None, study_name: str) -> str:
    """--sampler, else the study's own, else TPE; another sampler than the study's is refused."""
    if asked is not None and remembered is not None and asked != remembered:
        raise UserError(f"--sampler {asked}: study '{study_name}' is searched with {remembered}; continue it with "
                        f"--sampler {remembered} (or without --sampler), or start another with --study NAME.")
    return asked or remembered or "tpe"


def untried_points(study, grid: dict) -> int:
    """Points of ``grid`` that no finished trial of the study has tried."""
    keys = sorted(grid)
    tried = {tuple(t.params[k] for k in keys) for t in study.get_trials(deepcopy=False)
             if t.state.is_finished() and set(t.params) == set(keys)}
    return sum(1 for point in itertools.product(*(grid[k] for k in keys)) if point not in tried)


def shown_grid(grid: dict) -> str:
    return " x ".join(f"{key}={','.join(f'{v:g}' if isinstance(v, float) else str(v) for v in values)}"
                      for key, values in grid.items())


def open_study(plan: Plan, storage):
    """Create the study, or continue it; it must be the same experiment, metric, direction and sampler."""
    import optuna

    study = optuna.create_study(study_name=plan.study, storage=storage, direction=plan.direction,
                                sampler=make_sampler(plan.sampler, plan.grid),
                                pruner=make_pruner(plan.pruner, plan.warmup), load_if_exists=True)
    attrs = study.user_attrs
    kept = {"experiment": plan.name, "metric": plan.metric, "sampler": plan.sampler}
    for key, value in kept.items():
        if key in attrs and attrs[key] != value:
            raise UserError(f"study '{plan.study}' searches {key} '{attrs[key]}', not '{value}'; "
                            "choose another --study or drop the override.")
    if study.direction.name.lower() != plan.direction:
        raise UserError(f"study '{plan.study}' is set to {study.direction.name.lower()}, not {plan.direction}; "
                        "choose another --study.")
    for key, value in kept.items():
        if key not in attrs:
            study.set_user_attr(key, value)
    return study


def describe(distribution) -> str:
    """An Optuna distribution written back as a spec (``loguniform:0.01:0.5``)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return "choice:" + ",".join(str(c) for c in distribution.choices)
    log = getattr(distribution, "log", False)
    if isinstance(distribution, IntDistribution):
        kind = "logint" if log else "int"
        step = f":{distribution.step}" if distribution.step not in (None, 1) else ""
        return f"{kind}:{distribution.low}:{distribution.high}{step}"
    return f"{'loguniform' if log else 'uniform'}:{distribution.low:g}:{distribution.high:g}"


def check_space_against_study(study, space: list[Dimension]) -> None:
    """Optuna refuses to sample a name with another kind of range than earlier trials used
    (uniform vs log, int vs float, other choices); say so before a trial starts."""
    from optuna.distributions import check_distribution_compatibility

    for dim in space:
        wanted = dim.distribution()
        for trial in study.get_trials(deepcopy=False):
            earlier = trial.distributions.get(dim.key)
            if earlier is None:
                continue
            try:
                check_distribution_compatibility(earlier, wanted)
            except ValueError as err:
                raise UserError(f"search space {dim.key}={dim.spec()}: trial {trial.number} of study "
                                f"'{study.study_name}' searched {dim.key}={describe(earlier)} ({err}) Keep the same "
                                "kind of range, or start a new study with --study NAME.") from None
            break  # one earlier trial is enough: the study holds one kind per name


# -- trials that died with their process ---------------------------------------------
def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a process from a later one with its id."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]  # zombie/dead: the process has ended


def process_alive(pid: int, started: str | None) -> bool:
    if Path("/proc/self/stat").exists():
        now = _process_start(pid)
        return now is not None and (started is None or now == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _process_start(os.getpid())}


def _retry_of(storage):
    """The storage's retry of a trial failed for silence (RDB with heartbeats), or None (journal)."""
    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None) or \
        getattr(storage, "get_failed_trial_callback", None)
    return getter() if getter is not None else None


def fail_dead_trials(study, pids: set[int] | None = None) -> list[int]:
    """Mark FAIL the RUNNING trials whose process on this machine has ended (SIGKILL, power cut).

    Journal storage has no heartbeat, so a killed worker would leave its trial RUNNING
    for ever; each trial records its host and process, and any later command on that
    host finishes the job. On an RDB storage Optuna's heartbeat does it on every machine;
    there a host name proves too little (two machines or containers may share one), so
    only ``pids`` are checked: the workers this command started and saw die. A failed
    trial is queued again as Optuna's heartbeat would (RDB only).
    """
    import copy

    from optuna.trial import TrialState

    storage, host, failed = study._storage, socket.gethostname(), []
    retry = _retry_of(storage)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") != host or not isinstance(attrs.get("pid"), int):
            continue
        if (pids is not None and attrs["pid"] not in pids) or process_alive(attrs["pid"], attrs.get("pid_start")):
            continue
        try:
            storage.set_trial_system_attr(trial._trial_id, "fail_reason",
                                          f"its process {attrs['pid']} on {host} ended mid-trial")
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except Exception:  # it finished meanwhile: nothing to do then
            continue
        failed.append(trial.number)
        if retry is not None:
            retry(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
    return failed


def fail_silent_trials(study) -> list[int]:
    """Optuna's heartbeat check (RDB storage): trials silent for the grace period are failed and
    queued again. Optuna runs it before each trial; run here too, to say so."""
    import optuna
    from optuna.trial import TrialState

    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return []
    optuna.storages.fail_stale_trials(study)
    return sorted(t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in running)


# -- one trial ----------------------------------------------------------------------
def trial_dir(plan: Plan, number: int) -> Path:
    """``<runs root>/<name>/<study>-trial-<n>``; a suffix if a deleted study left that folder behind."""
    base = Path(plan.runs_root) / plan.name / f"{plan.study}-trial-{number}"
    path, n = base, 1
    while path.exists() and any(path.iterdir()):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def write_trial_marker(path: Path, plan: Plan, trial, state: str, **extra) -> None:
    """``trial.json`` in the run directory: which study and trial, and how it ended.

    Pruned and failed trials get no summary.json (api.run writes it on success only);
    this file tells a reader why."""
    if path.is_dir():
        write_json(path / "trial.json", {"study": plan.study, "trial": trial.number, "state": state,
                                                "metric": plan.metric, "params": trial.params, **extra})


class EpochReporter:
    """``report(epoch, row)`` for api.run: hands the objective to Optuna every ``every`` epochs,
    and prunes when told."""

    def __init__(self, trial, metric: str, every: int = 1):
        self.trial, self.metric, self.every = trial, metric, every
        self.epoch, self.value = None, None
        self.reported: set[int] = set()

    def __call__(self, epoch: int, row: dict) -> None:
        import optuna

        value = row_value(row, self.metric)
        if value is None or epoch in self.reported or not math.isfinite(value) or epoch % self.every:
            return  # a row without the metric, a second model's row for the same epoch, or not due
        self.reported.add(epoch)
        self.epoch, self.value = epoch, value
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({self.metric}={value:.4g})")


class MetricMissing(Exception):
    """The objective metric is not among a finished run's metrics: stop the whole search."""


def _say(plan: Plan, message: str) -> None:
    print(f"[search {plan.study}] {message}", file=sys.stderr, flush=True)


def _shown_params(params: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def make_objective(plan: Plan):
    import optuna

    from .api import run

    def objective(trial) -> float:
        for key, value in _owner().items():
            trial.set_user_attr(key, value)
        sampled = {dim.key: dim.suggest(trial) for dim in plan.space}
        out = trial_dir(plan, trial.number)
        trial.set_user_attr("run_dir", str(out.resolve()))
        reporter = EpochReporter(trial, plan.metric, plan.report_every)
        try:
            result = run(plan.name, runs_dir=plan.runs_root, out=out, device=plan.device, quiet=True,
                         figures=False, sets=list(plan.sets), report=reporter,
                         summary_extra={"study": plan.study, "trial": trial.number}, **sampled)
        except optuna.TrialPruned as err:
            write_trial_marker(out, plan, trial, "pruned", epoch=reporter.epoch, value=reporter.value)
            _say(plan, f"trial {trial.number} {err}: {_shown_params(sampled)}")
            raise
        except (Exception, KeyboardInterrupt) as err:
            write_trial_marker(out, plan, trial, "failed", reason=str(err) or type(err).__name__)
            _say(plan, f"trial {trial.number} failed: {err}")
            raise
        if plan.metric not in result.metrics:
            raise MetricMissing(f"--metric {plan.metric}: not among the metrics of {plan.name} "
                                f"({', '.join(sorted(result.metrics))}).")
        value = float(result.metrics[plan.metric])
        write_trial_marker(out, plan, trial, "complete", value=value)
        _say(plan, f"trial {trial.number} {plan.metric}={value:.6g}: {_shown_params(sampled)} ({out})")
        return value

    return objective


@contextlib.contextmanager
def _quiet_optuna():
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


def run_trials(plan: Plan, n_trials: int) -> None:
    """``n_trials`` trials, one after another, in this process."""
    import optuna

    if plan.threads:
        import torch

        torch.set_num_threads(plan.threads)
    with _quiet_optuna():
        study = optuna.load_study(study_name=plan.study, storage=open_storage(plan.storage),
                                  sampler=make_sampler(plan.sampler, plan.grid),
                                  pruner=make_pruner(plan.pruner, plan.warmup))
        # A UserError inside one trial (e.g. training diverged at a high lr) fails that trial only.
        study.optimize(make_objective(plan), n_trials=n_trials, catch=(UserError,))


def _worker_main(plan: Plan, n_trials: int, conn) -> None:
    """Entry point of a spawned worker: run its trials, send back None or (kind, message)."""
    problem = None
    try:
        run_trials(plan, n_trials)
    except (UserError, MetricMissing) as err:
        problem = ("user", str(err))
    except KeyboardInterrupt:
        problem = ("user", "interrupted")
    except Exception:  # a bug: keep the traceback for the report
        problem = ("bug", traceback.format_exc())
    conn.send(problem)
    conn.close()


def shares(trials: int, workers: int) -> list[int]:
    """``trials`` split as evenly as possible; their sum is exactly ``trials``."""
    return [trials // workers + (1 if i < trials % workers else 0) for i in range(workers)]


@dataclass
class WorkerProblems:
    errors: list        # (kind, message) a worker sent back: "user" mistakes or "bug" tracebacks
    deaths: list        # workers that ended without a word (killed): their trials are failed, the study goes on
    dead_pids: set = dataclasses.field(default_factory=set)


def run_workers(plan: Plan, counts: list[int]) -> WorkerProblems:
    """One spawned process per count, sharing the storage."""
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's threads and locks
    started = []
    for i, count in enumerate(counts):
        receive, send = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_worker_main, args=(plan, count, send), name=f"search-worker-{i}")
        process.start()
        send.close()
        started.append((process, receive))
    try:
        for process, _ in started:
            process.join()
    except KeyboardInterrupt:
        for process, _ in started:  # Ctrl-C reached the workers too: let them mark their trials
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
        raise
    problems = WorkerProblems([], [])
    for process, receive in started:
        try:
            problem = receive.recv()
        except EOFError:  # it died before sending anything (SIGKILL, out of memory)
            problem = None
        if problem is not None:
            problems.errors.append(problem)
        elif process.exitcode != 0:
            code = process.exitcode
            ended = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            problems.deaths.append(f"{process.name} (pid {process.pid}) {ended}; its running trial is marked failed")
            problems.dead_pids.add(process.pid)
    return problems


# -- the end of a search --------------------------------------------------------------
def plot_history(trials, metric: str, direction: str, path: Path, title: str) -> Path:
    """Objective per trial (dots), pruned trials at their last value (crosses), best so far (line)."""
    from optuna.trial import TrialState

    from .viz.plots import new_figure, save

    fig = new_figure(6.4, 4)
    ax = fig.add_subplot(1, 1, 1)
    done = [(t.number, t.value) for t in trials if t.state == TrialState.COMPLETE]
    pruned = [(t.number, t.intermediate_values[t.last_step]) for t in trials
              if t.state == TrialState.PRUNED and t.last_step is not None]
    if done:
        ax.scatter(*zip(*done), s=20, c="tab:blue", label="complete", zorder=3)
        better = min if direction == "minimize" else max
        best, xs, ys = None, [], []
        for number, value in done:
            best = value if best is None else better(best, value)
            xs.append(number)
            ys.append(best)
        last = max(t.number for t in trials)
        ax.step(xs + [last], ys + [ys[-1]], where="post", c="tab:red", label="best so far")
    if pruned:
        ax.scatter(*zip(*pruned), marker="x", c="tab:gray", label="pruned (last value)", zorder=2)
    values = [v for _, v in done + pruned]
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.set(xlabel="trial", ylabel=metric, title=title)
    if done or pruned:
        ax.legend()
    return save(fig, path)


# -- what the parameters did: importances, slices, contours ---------------------------------------
# fANOVA fits a random forest to the finished trials; on fewer its shares mean nothing.
MIN_TRIALS_FOR_IMPORTANCES = 3


def _finished_params(study) -> tuple[list, list[str]]:
    """The complete trials, and the parameters they searched (in the order first suggested)."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = list(dict.fromkeys(name for t in complete for name in t.params))
    return complete, names


def param_importances(study) -> dict:
    """Each searched parameter's share of the objective's variance (fANOVA, seeded: the same study
    gives the same numbers); {} while the study is too small. Reads the study only."""
    import optuna

    complete, names = _finished_params(study)
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCES or not names:
        return {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    with _quiet_optuna():
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()}


def _save_figure(fig, path: Path) -> Path:
    from .core.files import replaced_atomically

    with replaced_atomically(path) as tmp:
        fig.savefig(tmp, dpi=100)
    return path


def _note_figure(path: Path, title: str, note: str) -> Path:
    """What a study too small for a plot gets instead: the plot's name and what it lacks."""
    from .viz.plots import new_figure

    fig = new_figure(6.4, 2.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, note, ha="center", va="center", wrap=True, transform=ax.transAxes)
    return _save_figure(fig, path)


def _optuna_figure(plot, study, path: Path, title: str, **kwargs) -> Path:
    """One of Optuna's matplotlib plots, saved; its own note when Optuna cannot draw it."""
    import matplotlib.pyplot as plt

    try:
        with _quiet_optuna(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # matplotlib's about a one-trial axis: the figure says enough
            drawn = plot(study, **kwargs)
    except Exception as err:  # e.g. a parameter with one value only: say so rather than fail the search
        return _note_figure(path, title, f"Optuna could not draw it: {str(err).splitlines()[0] if str(err) else err!r}")
    fig = (drawn.flat[0] if hasattr(drawn, "flat") else drawn).figure  # one Axes, or an array of them
    try:
        return _save_figure(fig, path)
    finally:
        plt.close(fig)  # Optuna draws through pyplot, which keeps every figure until closed


def study_figures(study, study_dir: Path, metric: str) -> dict:
    """importances.png, slice.png and, with two parameters or more, contour.png, drawn by Optuna's
    matplotlib visualisation; a study too small for one gets a figure saying what it lacks.
    Reads the study only (a journal is never written for a figure)."""
    import optuna
    from optuna.visualization import matplotlib as plots

    complete, names = _finished_params(study)
    figures = {}
    if len(complete) >= MIN_TRIALS_FOR_IMPORTANCES and names:
        figures["importances"] = _optuna_figure(
            plots.plot_param_importances, study, study_dir / "importances.png", "importances",
            evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), target_name=metric)
    else:
        figures["importances"] = _note_figure(
            study_dir / "importances.png", "Parameter importances",
            f"need {MIN_TRIALS_FOR_IMPORTANCES} complete trials; this study has {len(complete)} so far")
    if complete and names:
        figures["slice"] = _optuna_figure(plots.plot_slice, study, study_dir / "slice.png", "slices",
                                          target_name=metric)
    else:
        figures["slice"] = _note_figure(study_dir / "slice.png", "Slices", "no complete trial yet")
    if len(names) >= 2:
        if len(complete) >= 2:
            figures["contour"] = _optuna_figure(plots.plot_contour, study, study_dir / "contour.png", "contours",
                                                target_name=metric)
        else:
            figures["contour"] = _note_figure(study_dir / "contour.png", "Contours",
                                              f"need 2 complete trials; this study has {len(complete)} so far")
    return figures


def finish(study, plan: Plan, study_dir: Path, storage_shown: str) -> dict:
    """best_params.json and history.png beside the study; the dict the CLI prints."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
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
        "importances": param_importances(study),
    }
    best_path = study_dir / "best_params.json"
    write_json(best_path, record)
    history = plot_history(trials, plan.metric, plan.direction, study_dir / "history.png",
                           f"{plan.study}: {plan.metric} ({plan.direction})")
    figures = study_figures(study, study_dir, plan.metric)
    states = {}
    for t in trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    return {"study": plan.study, "storage": storage_shown, "metric": plan.metric, "direction": plan.direction,
            "sampler": plan.sampler, "n_trials": len(trials), "trials_by_state": states,
            "best_value": record["best_value"], "best_params": record["best_params"],
            "best_trial": record["best_trial"], "best_run_dir": record["best_run_dir"],
            "importances": record["importances"], "best_params_path": str(best_path),
            "history_path": str(history), **{f"{name}_path": str(path) for name, path in figures.items()}}


def trials_to_run(study, asked: int | None, grid: dict) -> int:
    """--trials, else 10; a grid runs its points not yet tried, at most --trials of them."""
    if not grid:
        return DEFAULT_TRIALS if asked is None else asked
    untried = untried_points(study, grid)
    return untried if asked is None else min(asked, untried)


def prepare_study(plan: Plan, dims: list[Dimension], sampler: str | None, grid_points: int):
    """The plan with its sampler (and grid), and the study, created or continued; trials that a
    dead worker left running are failed first."""
    with _quiet_optuna():
        storage = open_storage(plan.storage)
        kind = choose_sampler(sampler, remembered_sampler(storage, plan.study), plan.study)
        check_sampler_installed(kind)  # the study's own may be botorch
        grid = {dim.key: tuple(dim.grid(grid_points)) for dim in dims} if kind == "grid" else {}
        plan = dataclasses.replace(plan, sampler=kind, grid=tuple(grid.items()))
        study = open_study(plan, storage)
        check_space_against_study(study, dims)
        on_database = is_url(plan.storage)
        stale = fail_silent_trials(study) if on_database else fail_dead_trials(study)
    if stale:
        many = len(stale) > 1
        why = (f"sent no heartbeat for {grace_period()} s (a worker died); marked failed and queued again"
               if on_database else f"{'were' if many else 'was'} left running by a process that ended; marked failed")
        _say(plan, f"trial{'s' if many else ''} {', '.join(map(str, stale))} {why}")
    if grid:
        _say(plan, f"grid of {math.prod(len(v) for v in grid.values())} point(s): {shown_grid(grid)}; "
                   f"{untried_points(study, grid)} not tried yet in this study")
    return plan, study


def search(name: str, trials: int | None = None, space: list[str] | None = None, sets: list[str] | None = None,
           study_name: str | None = None, storage: str | None = None, workers: int = 1,
           pruner: str = "median", metric: str | None = None, direction: str | None = None,
           runs_dir: str | None = None, device: str = "auto", sampler: str | None = None,
           grid_points: int = GRID_POINTS) -> dict:
    """Add ``trials`` trials to the study (created or continued), ``workers`` at a time.

    ``space``: ``KEY=SPEC`` strings (default: experiments/NAME/search.json); ``sets``:
    fixed ``KEY=VALUE`` overrides for every trial. ``sampler``: tpe (default), gp, botorch,
    random or grid (every point of the space, ``grid_points`` values per numeric range;
    without ``trials``, all the points not tried yet); a continued study keeps its own.
    Returns the best trial so far and where best_params.json and the figures were written.
    """
    experiment = registry.get(name)
    pick_device(device)  # a bad --device fails before any trial
    if trials is not None and trials < 1:
        raise UserError(f"--trials {trials}: must be at least 1.")
    if workers < 1:
        raise UserError(f"--workers {workers}: must be at least 1.")
    if grid_points < 2:
        raise UserError(f"--grid-points {grid_points}: a range needs at least 2 points (its ends).")
    if sampler is not None:
        check_sampler_installed(sampler)
    dims = load_space(name, space)
    params = check_space(name, dims, list(sets or []))
    metric, direction = objective_of(experiment, metric, direction)
    study_name = _check_study_name(study_name or name)
    root = runs_root(runs_dir)
    study_dir = root / "studies" / study_name
    study_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or str(study_dir / "journal.log")
    epochs = params.get("epochs")
    plan = Plan(name=name, study=study_name, storage=storage, space=tuple(dims), sets=tuple(sets or []),
                metric=metric, direction=direction, pruner=pruner,
                warmup=max(1, epochs // 10) if isinstance(epochs, int) else 1,
                # Each report is a locked, fsync'ed journal write: ~50 per trial are plenty to
                # prune on, and the same steps in every trial keep the median comparable.
                report_every=max(1, epochs // _REPORTS_PER_TRIAL) if isinstance(epochs, int) else 1,
                runs_root=str(root), device=device)
    if not is_url(storage) and os.path.lexists(storage + ".lock"):
        _say(plan, f"{storage}.lock exists: another search is writing, or a killed one left it behind; "
                   "Optuna removes a lock untouched for 30 s, so this may wait that long")
    plan, study = prepare_study(plan, dims, sampler, grid_points)
    grid = dict(plan.grid)
    trials = trials_to_run(study, trials, grid)
    workers = min(workers, max(trials, 1))
    # K workers on C cores: C/K torch threads each, not C each fighting for the cores
    plan = dataclasses.replace(plan, threads=max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0)
    if trials:
        _say(plan, f"{trials} trial(s) of {name}, {workers} at a time, sampler {plan.sampler}; {metric} "
                   f"({direction}); storage {shown_storage(storage)}; study has {len(study.trials)} trial(s) so far")
    else:
        _say(plan, "every point of the grid has a finished trial in this study: nothing to run")
    problems = WorkerProblems([], [])
    if trials and workers == 1:
        try:
            run_trials(plan, trials)
        except MetricMissing as err:
            problems.errors.append(("user", str(err)))
    elif trials:
        problems = run_workers(plan, shares(trials, workers))
    with _quiet_optuna():
        # On a database only the workers seen dying are this command's to fail; the heartbeat does the rest.
        fail_dead_trials(study, problems.dead_pids if is_url(storage) else None)
        result = finish(study, plan, study_dir, shown_storage(storage))
    for death in problems.deaths:
        _say(plan, death)
    for what, message in problems.errors:
        if what == "bug":
            raise RuntimeError(f"a search worker failed:\n{message}")
        raise UserError(message)
    return result

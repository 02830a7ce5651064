"""Samplers and pruners: which one a study uses (a study keeps its own), how each is made in every
worker, and the grid's bookkeeping (which points are left)."""
from __future__ import annotations

import itertools
import warnings

from ..core.errors import UserError
from ..core.extras import install_hint

SAMPLERS = ("tpe", "gp", "botorch", "random", "grid")
PRUNERS = ("median", "none")
DEFAULT_TRIALS = 10   # trials of a search that does not say, except a grid (its size)
# Trials sampled at random before a model (TPE, Gaussian process, BoTorch) picks: Optuna's default.
STARTUP_TRIALS = 10


def check_sampler_installed(kind: str) -> None:
    """BoTorch is an optional extra: say how to get it before any trial starts."""
    if kind not in SAMPLERS:
        raise UserError.for_option("sampler", kind, f"choose one of {', '.join(SAMPLERS)}.")
    if kind == "botorch":
        try:
            with warnings.catch_warnings():  # its libraries' own deprecations (torch.jit.script), not the user's
                warnings.simplefilter("ignore", FutureWarning)
                import botorch  # noqa: F401
                from optuna_integration import BoTorchSampler  # noqa: F401
        except ImportError:
            raise UserError.for_option("sampler", kind, "needs BoTorch and optuna-integration: "
                                                        f"{install_hint('botorch')}.") from None


def check_pruner(kind: str) -> None:
    if kind not in PRUNERS:
        raise UserError.for_option("pruner", kind, f"choose {' or '.join(PRUNERS)}.")


def make_pruner(kind: str, warmup: int):
    import optuna

    check_pruner(kind)
    if kind == "none":
        return optuna.pruners.NopPruner()
    # Early epochs are noisy: a slow starter is not yet a bad trial.
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)


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


def remembered_sampler(study) -> str | None:
    """The sampler an existing study was searched with; "tpe" for one from before samplers were
    remembered (TPE was the only one); None for a new study (``study`` None)."""
    if study is None:
        return None
    remembered = study.user_attrs.get("sampler")
    return remembered or ("tpe" if study.get_trials(deepcopy=False) else None)


def choose_sampler(asked: str | None, remembered: str | None, study_name: str) -> str:
    """The asked sampler, else the study's own, else TPE; another sampler than the study's is refused."""
    if asked is not None and remembered is not None and asked != remembered:
        raise UserError.for_option("sampler", asked, f"study '{study_name}' is searched with {remembered}; continue "
                                                     f"it with sampler {remembered} (or none given), or start another "
                                                     "study.")
    return asked or remembered or "tpe"


def untried_points(study, grid: dict) -> int:
    """Points of ``grid`` that no finished trial of ``study`` (None: a new one) has tried. The defaults'
    trial is not one of the grid's (the grid sampler does not count it), and an interrupted trial did not
    try its point (its rerun, queued, will)."""
    keys = sorted(grid)
    trials = study.get_trials(deepcopy=False) if study is not None else []
    tried = {tuple(t.params[k] for k in keys) for t in trials if t.state.is_finished() and set(t.params) == set(keys)
             and not t.user_attrs.get("baseline") and not t.user_attrs.get("interrupted")}
    return sum(1 for point in itertools.product(*(grid[k] for k in keys)) if point not in tried)


def trials_to_run(study, asked: int | None, grid: dict, extra: bool = False) -> int:
    """``asked``, else 10; a grid runs its points not yet tried, at most ``asked`` of them, and
    (``extra``) the defaults' trial besides."""
    if not grid:
        return DEFAULT_TRIALS if asked is None else asked
    untried = untried_points(study, grid) + int(extra)
    return untried if asked is None else min(asked, untried)


def shown_grid(grid: dict) -> str:
    return " x ".join(f"{key}={','.join(f'{v:g}' if isinstance(v, float) else str(v) for v in values)}"
                      for key, values in grid.items())

"""What a person reads at the end of a search: the defaults against the best trial (better or worse,
in %, in the objective's direction), the command that trains the best again, and, after Ctrl-C, the
command that continues the study. Commands are written to be copied as they are (quoted for a shell,
with ``--module`` for an experiment of one's own)."""
from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass

from ..core.text import as_typed
from .baseline import BASELINE_ATTR, INTERRUPTED_ATTR
from .space import GRID_POINTS
from .trials import shown_params

DIGITS = 4  # significant digits of the values in the summary


@dataclass(frozen=True)
class Call:
    """A search call's arguments as given (what a command continuing it must repeat)."""

    name: str
    trials: int | None = None
    space: tuple = ()
    sets: tuple = ()
    study_name: str | None = None
    storage: str | None = None
    workers: int = 1
    pruner: str = "median"
    metric: str | None = None
    direction: str | None = None
    runs_dir: str | None = None
    device: str = "auto"
    sampler: str | None = None
    grid_points: int = GRID_POINTS
    baseline: bool = True


# -- commands ------------------------------------------------------------------------------------------
def module_options(name: str) -> list[str]:
    """``--module FILE`` when ``name`` is an experiment of one's own named by ``--module`` or
    $TORCHCLASSICS_PLUGINS (an installed entry point is found without it)."""
    from ..plugins.discovery import PLUGINS_VARIABLE, is_plugin, plugin_experiments

    if not is_plugin(name):
        return []
    plugin = plugin_experiments()[name]
    return ["--module", as_typed(plugin.source)] if plugin.origin == f"${PLUGINS_VARIABLE}" else []


def command(words: list[str]) -> str:
    return "torchclassics " + " ".join(shlex.quote(str(word)) for word in words)


def retrain_command(name: str, best_params_path: str | os.PathLike, sets=()) -> str:
    """``torchclassics run NAME --params .../best_params.json`` with the trial's fixed ``--set`` values."""
    words = ["run", name, "--params", as_typed(best_params_path)]
    for text in sets:
        words += ["--set", text]
    return command(words + module_options(name))


def continue_command(call: Call, left: int | None, grid: bool = False) -> str:
    """The same search, for the ``left`` trials it still owes (a grid without ``trials``: the points
    not tried yet, as before). A database URL is shown without its password."""
    from .storage import shown_storage

    words = ["search", call.name]
    if left is not None and not (grid and call.trials is None):
        words += ["--trials", str(max(left, 1))]
    for flag, value, default in (("--study", call.study_name, None), ("--runs-dir", call.runs_dir, None),
                                 ("--storage", call.storage and shown_storage(call.storage), None),
                                 ("--sampler", call.sampler, None), ("--workers", call.workers, 1),
                                 ("--pruner", call.pruner, "median"), ("--metric", call.metric, None),
                                 ("--direction", call.direction, None), ("--device", call.device, "auto"),
                                 ("--grid-points", call.grid_points, GRID_POINTS)):
        if value is not None and value != default:
            words += [flag, str(value)]
    for flag, values in (("--param", call.space), ("--set", call.sets)):
        for value in values:
            words += [flag, value]
    if not call.baseline:
        words.append("--no-baseline")
    return command(words + module_options(call.name))


# -- the study's trials ----------------------------------------------------------------------------------
def trials_done(study, command_id: str) -> int:
    """Trials of one search command that ended (complete, pruned, failed), not counting interrupted ones."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.user_attrs.get("command") == command_id and t.state.is_finished()
               and not t.user_attrs.get(INTERRUPTED_ATTR))


def baseline_trial(trials):
    """The trial that ran the defaults (the first, if a rerun made two), or None."""
    return next((t for t in trials if t.user_attrs.get(BASELINE_ATTR) and not t.user_attrs.get(INTERRUPTED_ATTR)),
                None)


def change_pct(value: float, baseline: float, direction: str) -> float | None:
    """How much better ``value`` is than ``baseline`` in %, in the objective's direction (negative: worse)."""
    if baseline == 0 or not math.isfinite(value) or not math.isfinite(baseline):
        return None
    gain = (baseline - value) if direction == "minimize" else (value - baseline)
    return 100.0 * gain / abs(baseline)


def beats(value: float, other: float, direction: str) -> bool:
    return value < other if direction == "minimize" else value > other


def compared(trials: list, direction: str) -> dict:
    """The best trial, never worse than the defaults, and how it and the best other trial compare with
    them. Without a complete defaults' trial: the study's best as it is."""
    from optuna.trial import TrialState

    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    ordered = sorted(complete, key=lambda t: t.value if direction == "minimize" else -t.value)  # stable: first
    base = baseline_trial(trials)
    base_value = base.value if base is not None and base.state == TrialState.COMPLETE else None
    others = [t for t in ordered if t is not base]
    best = ordered[0] if ordered else None
    if base_value is not None and not (others and beats(others[0].value, base_value, direction)):
        best = base  # a tie with the defaults is no reason to change them
    runner_up = others[0] if others else None
    return {
        "best": best,
        "baseline_trial": base.number if base is not None else None,
        "baseline_state": base.state.name.lower() if base is not None else None,
        "baseline_value": base_value,
        "baseline_params": dict(base.params) if base is not None else None,
        "best_is_baseline": best is not None and best is base,
        "vs_baseline_pct": (change_pct(best.value, base_value, direction)
                            if best is not None and base_value is not None else None),
        "best_other": None if runner_up is None else {
            "trial": runner_up.number, "value": runner_up.value, "params": dict(runner_up.params),
            "vs_baseline_pct": change_pct(runner_up.value, base_value, direction) if base_value is not None else None},
    }


# -- the table -------------------------------------------------------------------------------------------
def _number(value) -> str:
    return f"{value:.{DIGITS}g}" if isinstance(value, float) else str(value)


def _pct(pct: float | None, against: str = "the defaults") -> str:
    if pct is None:
        return ""
    if abs(pct) < 0.05:
        return f"as good as {against}"
    return f"{abs(pct):.3g} % {'better' if pct > 0 else 'worse'} than {against}"


def _states(by_state: dict) -> str:
    return ", ".join(f"{count} {state}" for state, count in sorted(by_state.items(), key=lambda kv: -kv[1]))


def summary_lines(result: dict) -> list[str]:
    """The end of a search for a person (``search``'s result): the defaults, the best trial, how much
    better or worse, and the command that trains the best again; a warning when no trial beat the
    defaults."""
    metric, direction = result["metric"], result["direction"]
    stopped = len(result.get("interrupted_trials") or [])
    stopped = f"; {stopped} of them interrupted, run again" if stopped else ""
    lines = [f"search {result['study']}: {result['n_trials']} trial(s) ({_states(result.get('trials_by_state') or {})}"
             f"{stopped}); {metric}, {'lower' if direction == 'minimize' else 'higher'} is better"]
    rows = []
    base = result.get("baseline_trial")
    if base is None:
        lines.append("  defaults: not a trial of this study (--no-baseline, or a study begun before the defaults "
                     "were trial 0)")
    elif result.get("baseline_value") is None:
        lines.append(f"  defaults: trial {base} ended {result.get('baseline_state') or 'unfinished'}, without a value "
                     "to compare with")
    else:
        rows.append(("defaults", base, result["baseline_value"], result.get("baseline_params") or {}, ""))
    if result.get("best_trial") is None:
        lines += _table(rows, metric)
        lines.append("  no trial completed: nothing to compare or train again")
        return lines
    if result.get("best_is_baseline"):
        lines += _table(rows, metric)
        other = result.get("best_other")
        tried = (f" (the best other, trial {other['trial']}: {metric} {_number(other['value'])}"
                 f"{', ' + _pct(other['vs_baseline_pct']) if other.get('vs_baseline_pct') is not None else ''})"
                 if other else "")
        lines.append(f"  warning: no trial beat the defaults{tried}; best_params.json holds the defaults' parameters")
        lines.append(f"retrain the defaults: {result['retrain_command']}")
        return lines
    rows.append(("best", result["best_trial"], result["best_value"], result.get("best_params") or {},
                 _pct(result.get("vs_baseline_pct"))))
    lines += _table(rows, metric)
    pct = result.get("vs_baseline_pct")
    if pct is not None and pct <= 0:  # a tie, or worse: nothing better was found than what there is
        lines.append("  warning: no trial beat the defaults")
    lines.append(f"retrain the best: {result['retrain_command']}")
    return lines


def _table(rows: list, metric: str) -> list[str]:
    """Aligned rows: what, trial number, the metric's value, the parameters, a comparison."""
    if not rows:
        return []
    cells = [(what, f"trial {n}", f"{metric} {_number(value)}", shown_params(params), note)
             for what, n, value, params, note in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)).rstrip()
            + (f"  ({row[4]})" if row[4] else "") for row in cells]

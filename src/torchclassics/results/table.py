"""One experiment's table, its order, and its formats (Markdown, CSV, JSON).

Each experiment's table shows its metrics first (held-out metrics, the best value and its epoch,
train_s, status), then only the parameters that vary among its runs; rows are in natural order
(``trial-2`` before ``trial-10``), or best first by a metric. Which way is better comes from the
run record: a summary's objective, else the direction :mod:`torchclassics.rundir.metrics` guesses
from the metric's name.
"""
from __future__ import annotations

import csv
import io
import json
import math

from ..core.errors import UserError
from ..rundir.metrics import Objective, guessed_mode, is_held_out
from .runs import Found, by_experiment, status_line

# Numbers of a run (not in its metrics) that sort= also accepts.
RUN_NUMBERS = ("wall_s", "train_s")
# OWASP's CSV injection rule: a text cell starting with one of these is read as a formula by a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# -- values --------------------------------------------------------------------------------------------
def numeric(value) -> bool:
    """A number, NaN included (a diverged run logs one); not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(value) -> float | None:
    """The value as a float to sort and plot by; None for text, NaN, and what no float can hold."""
    if not numeric(value):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return None if math.isnan(value) else value


def finite(value):
    """NaN and infinities become null: JSON has no spelling for them (a diverged run has them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


SIGNIFICANT = 4  # digits of a float in a table, a report or a summary: 0.007412, not 0.0074123456789


def significant(value: float) -> str:
    """``value`` with :data:`SIGNIFICANT` significant digits (``0.01``, ``0.007412``, ``1.235e+05``)."""
    return f"{value:.{SIGNIFICANT}g}"


def rounded(value):
    """Floats inside a structure to :data:`SIGNIFICANT` significant digits (NaN and infinities kept)."""
    if isinstance(value, float):
        return float(significant(value)) if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


def format_cell(value) -> str:
    """Text for Markdown and HTML: 4 significant digits for floats, compact JSON for structures (their
    floats rounded alike)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return significant(value)
    if isinstance(value, (dict, list)):
        return json.dumps(rounded(value), separators=(",", ":"), sort_keys=True)
    return str(value)


def csv_cell(value) -> str:
    """Numbers at full precision (CSV is read by programs); text that a spreadsheet would run as a
    formula gets a leading ``'`` (numbers stay numbers: -0.5 is a number, not a formula)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if numeric(value):
        return str(value)
    text = format_cell(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


# -- which way is better ----------------------------------------------------------------------------------
def objective(runs: list[dict]) -> Objective | None:
    """The objective of an experiment: from a summary's objective, else from the metric its best checkpoint
    followed (direction guessed from the name); None when neither is known."""
    for run in runs:
        if run["objective"] is not None:
            return run["objective"]
    for run in runs:
        if run["best"].get("metric"):
            return Objective.guessed(str(run["best"]["metric"]))
    return None


def maximised(metric: str, runs: list[dict]) -> bool:
    goal = objective(runs)
    return goal.mode == "max" if goal is not None and goal.metric == metric else guessed_mode(metric) == "max"


# -- one experiment's table ---------------------------------------------------------------------------------
def flat_params(params: dict, prefix: str = "") -> dict:
    """``{"optimizer_args": {"momentum": 0.9}}`` -> ``{"optimizer_args.momentum": 0.9}`` (the --set
    spelling), so a table shows the one nested value that differs, not the whole object."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            flat.update(flat_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _comparable(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def varying_params(runs: list[dict]) -> list[str]:
    """Parameters (flattened) whose value differs among these runs; missing counts as a value.
    In the order the first run that has them lists them."""
    flats = [flat_params(run["params"]) for run in runs]
    keys = list(dict.fromkeys(key for flat in flats for key in flat))
    return [key for key in keys if len({_comparable(flat.get(key, "\0missing")) for flat in flats}) > 1]


def metric_columns(runs: list[dict]) -> list[str]:
    """The held-out metrics (objective first, then alphabetical); all metrics when none is held out."""
    names = list(dict.fromkeys(name for run in runs for name in run["metrics"]))
    held_out = [name for name in names if is_held_out(name)] or names
    goal = objective(runs)
    first = goal.metric if goal is not None else None
    return sorted(held_out, key=lambda name: (name != first, name))


def best_columns(runs: list[dict]) -> list[str]:
    """``best_<metric>`` and ``best_epoch`` when the runs' best follows one metric; else ``best_metric`` too."""
    followed = {str(run["best"]["metric"]) for run in runs if run["best"].get("metric")}
    if len(followed) > 1:
        return ["best_metric", "best_value", "best_epoch"]
    return [f"best_{next(iter(followed))}" if followed else "best_value", "best_epoch"]


def experiment_table(runs: list[dict]) -> tuple[list[str], list[dict]]:
    """(columns, rows) of one experiment's runs: run, metrics, best, train_s, status, then the
    parameters that vary among them. Raw values; None where a run lacks a column."""
    metrics, best = metric_columns(runs), best_columns(runs)
    fixed = ["run", *metrics, *best, "train_s", "status"]
    params = {key: (f"param.{key}" if key in fixed else key) for key in varying_params(runs)}
    rows = []
    for run in runs:
        row = {"run": run["run"], **{name: run["metrics"].get(name) for name in metrics}}
        row.update(dict(zip(best, ([run["best"].get("metric")] if len(best) == 3 else [])
                            + [run["best"].get("value"), run["best"].get("epoch")])))
        row.update(train_s=run["train_s"], status=run["status"])
        flat = flat_params(run["params"])
        row.update({column: flat.get(key) for key, column in params.items()})
        rows.append(row)
    return fixed + list(params.values()), rows


def numeric_columns(columns: list[str], rows: list[dict]) -> set[str]:
    """Columns of numbers (NaN included: a diverged run's) and blanks."""
    return {c for c in columns if any(numeric(r[c]) for r in rows) and all(r[c] is None or numeric(r[c]) for r in rows)}


# -- order -----------------------------------------------------------------------------------------------------
def run_value(run: dict, name: str):
    return run["metrics"][name] if name in run["metrics"] else run.get(name) if name in RUN_NUMBERS else None


def sort_runs(runs: list[dict], metric: str) -> list[dict]:
    """Best first by ``metric``; runs without a number for it go last, in their old order."""
    sign = -1.0 if maximised(metric, runs) else 1.0
    with_value = [r for r in runs if number(run_value(r, metric)) is not None]
    without = [r for r in runs if number(run_value(r, metric)) is None]
    return sorted(with_value, key=lambda r: sign * number(run_value(r, metric))) + without


def check_sort(runs: list[dict], metric: str) -> None:
    names = {name for run in runs for name in run["metrics"]}
    names |= {name for name in RUN_NUMBERS if any(number(run.get(name)) is not None for run in runs)}
    if metric not in names:
        raise UserError.for_option("sort", metric, f"no run has that metric; the metrics there are: "
                                   f"{', '.join(sorted(names))}.")


def only_experiment(runs: list[dict], experiment: str | None, root) -> list[dict]:
    if experiment is None:
        return runs
    chosen = [run for run in runs if run["experiment"] == experiment]
    if not chosen:
        raise UserError.for_option("experiment", experiment, f"no runs of it below {root}; the experiments there "
                                   f"are: {', '.join(by_experiment(runs))}.")
    return chosen


def parsed_filter(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` (``lr=0.01``, ``optimizer=Adam``, ``optimizer_args.momentum=0.9``) as (key, value): the
    value read as JSON when it is (a number, true, null, a list), else as text."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip() or not value.strip():
        raise UserError.for_option("where", text, "is not KEY=VALUE; write a parameter and its value, e.g. "
                                   "lr=0.01 or optimizer=Adam.")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value.strip()


def same_value(have, want) -> bool:
    """A parameter's value equals a filter's: numbers as numbers (0.01 == 1e-2), else by their JSON."""
    if numeric(have) and numeric(want):
        return math.isclose(have, want, rel_tol=1e-9, abs_tol=0.0)
    return _comparable(have) == _comparable(want) or (isinstance(want, str) and format_cell(have) == want)


def filtered(runs: list[dict], where: list[str]) -> list[dict]:
    """The runs whose parameters match every ``KEY=VALUE`` of ``where``; a UserError naming a parameter no
    run has, or a value no run has (with the values there)."""
    for text in where:
        key, want = parsed_filter(text)
        flats = [flat_params(run["params"]) for run in runs]
        if not any(key in flat for flat in flats):
            known = sorted({name for flat in flats for name in flat})
            raise UserError.for_option("where", text, f"no run has the parameter {key}; the parameters there are: "
                                       f"{', '.join(known)}.")
        chosen = [run for run, flat in zip(runs, flats) if key in flat and same_value(flat[key], want)]
        if not chosen:
            values = sorted({format_cell(flat[key]) for flat in flats if key in flat})
            shown = ", ".join(values[:12]) + (", ..." if len(values) > 12 else "")
            raise UserError.for_option("where", text, f"no run has {key} = {format_cell(want)}; its values there "
                                       f"are: {shown}.")
        runs = chosen
    return runs


def tables(runs: list[dict], sort: str | None,
           top: int | None = None) -> dict[str, tuple[list[dict], list[str], list[dict]]]:
    """Experiment -> (its runs in table order, columns, rows). ``top``: only the best ``top`` runs of each,
    by ``sort``, else by the experiment's objective."""
    found = {}
    for name, group in by_experiment(runs).items():
        goal = objective(group)
        by = sort or (goal.metric if top is not None and goal is not None else None)
        if by:
            group = sort_runs(group, by)
        if top is not None:
            group = group[:top]
        found[name] = (group, *experiment_table(group))
    return found


# -- formats ---------------------------------------------------------------------------------------------------
def markdown_text(value) -> str:
    return format_cell(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def to_markdown(columns: list[str], rows: list[dict]) -> str:
    """A Markdown table padded to its widest cells, so it also reads in a terminal."""
    cells = [[markdown_text(row[c]) for c in columns] for row in rows]
    widths = [max([len(c), 3, *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    numbers = numeric_columns(columns, rows)

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.rjust(w) if c in numbers else v.ljust(w)
                                 for v, w, c in zip(values, widths, columns)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if c in numbers else "-" * (w + 2) for w, c in zip(widths, columns)) + "|"
    return "\n".join([line([markdown_text(c) for c in columns]), rule] + [line(values) for values in cells])


def to_csv(columns: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(c) for c in columns])
    for row in rows:
        writer.writerow([csv_cell(row[c]) for c in columns])
    return buffer.getvalue().rstrip("\n")


def to_json(found: dict[str, tuple[list[dict], list[str], list[dict]]]) -> str:
    """Experiment -> rows, each with that experiment's columns in order; NaN and infinities as null
    (strict JSON, which every parser reads)."""
    return json.dumps(finite({name: [{c: row[c] for c in columns} for row in rows]
                              for name, (_, columns, rows) in found.items()}),
                      indent=2, allow_nan=False, default=str)


def markdown_section(name: str, runs: list[dict], columns: list[str], rows: list[dict]) -> str:
    goal = objective(runs)
    aim = f" · objective {goal.metric} ({'higher' if goal.mode == 'max' else 'lower'} is better)" if goal else ""
    return f"## {markdown_text(name)}\n\n{status_line(runs)}{aim}\n\n{to_markdown(columns, rows)}"


def markdown_problems(found: Found, runs: list[dict]) -> str:
    """The lists under the tables: runs left out (and why), runs shown with a problem."""
    parts = []
    if found.skipped:
        parts.append("**Skipped runs** (not in the tables: they cannot be read or shown)\n\n"
                     + "\n".join(f"- {markdown_text(s.path)}: {markdown_text(s.reason)}" for s in found.skipped))
    flagged = [run for run in runs if run["problems"]]
    if flagged:
        parts.append("**Flagged runs** (in the tables; check them)\n\n"
                     + "\n".join(f"- {markdown_text(run['id'])} ({markdown_text(run['experiment'])}): "
                                 f"{markdown_text('; '.join(run['problems']))}" for run in flagged))
    return "\n\n".join(parts)

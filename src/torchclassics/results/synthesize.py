"""One table per experiment of the runs below a folder (the CS230 ``synthesize_results.py``, for run directories).

    torchclassics synthesize runs/ --sort test_accuracy --format csv --experiment classification

Each experiment's table shows its metrics first (held-out metrics, the best value
and its epoch, train_s, status), then only the parameters that vary among its
runs; rows are in natural order (``trial-2`` before ``trial-10``).

A run directory is any folder holding a ``params.json`` with an ``experiment``
key; ``summary.json`` is there once it finished. The readers here never write
into a run, and never read a file that a symlink leads out of its run directory
to; the only file written is ``results.md`` in the folder given.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
from pathlib import Path

from ..core import files as atomic
from ..config import read_json
from ..engine.rundir import read_metrics, runs_root
from ..errors import UserError

# What a figure may be: the formats PIL can verify (the report embeds nothing else).
IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".webp")
# Bookkeeping in a metrics.jsonl row; what is left of the row are metrics.
ROW_BOOKKEEPING = ("epoch", "step", "lr", "train_s", "tag")
# Numbers of a run (not in its metrics) that --sort also accepts.
RUN_NUMBERS = ("wall_s", "train_s")
FORMATS = ("markdown", "csv", "json")
STATUSES = ("finished", "pruned", "failed", "unfinished")
HELD_OUT = re.compile(r"(?:^|_)(?:test|val)_")  # test_mse, val_accuracy, Adam_test_loss


def warn(message: str) -> None:
    """One line on stderr: a damaged run is reported, and the others are still read."""
    print(f"torchclassics: warning: {message}", file=sys.stderr)


def natural_key(text: str) -> list:
    """``trial-2`` before ``trial-10``: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def is_held_out(metric: str) -> bool:
    return bool(HELD_OUT.search(metric))


def numeric(value) -> bool:
    """A number, NaN included (a diverged run logs one); not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


# -- reading, never outside the run ------------------------------------------------------
def existing_root(root: str | Path | None) -> Path:
    path = runs_root() if root is None else Path(root)
    if not path.exists():
        raise UserError(f"{path} does not exist; give the folder your runs are in (default: runs/ or $TORCHCLASSICS_RUNS).")
    if not path.is_dir():
        raise UserError(f"{path} is a file, not a folder of runs; give the folder that holds the run directories.")
    return path


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, symlinks resolved, is in ``folder`` (symlinks resolved too)."""
    return path.resolve().is_relative_to(folder.resolve())


def own_file(path: Path, folder: Path) -> bool:
    """A file that is there and stays inside ``folder``; a symlink out of it is warned about and refused,
    so a run folder from someone else cannot pull /etc/hostname or a key into a table or a report."""
    if not path.is_file():
        return False
    if not inside(path, folder):
        warn(f"{path} is a symlink out of {folder} (to {path.resolve()}); skipped it.")
        return False
    return True


def read_history(path: Path) -> list[dict]:
    """Rows of metrics.jsonl. A torn line (a run killed mid-write) is dropped with a warning, not the run."""
    if not own_file(path / "metrics.jsonl", path):
        return []
    rows, bad = read_metrics(path)
    if bad:
        warn(f"{path / 'metrics.jsonl'}: skipped {bad} unreadable line(s).")
    return rows


def figure_files(folder: Path, owner: Path) -> list[Path]:
    """Image files below ``folder`` that stay inside ``owner`` (a run or study folder), sorted.
    Symlinked folders are not walked into; a symlinked file leading out of ``owner`` is skipped."""
    if not folder.is_dir():
        return []
    if not inside(folder, owner):
        warn(f"{folder} is a symlink out of {owner} (to {folder.resolve()}); skipped its figures.")
        return []
    found = []
    for parent, folders, files in os.walk(folder):
        folders.sort()
        found += [Path(parent) / name for name in files if Path(name).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(path for path in found if own_file(path, owner))


def rename_legacy_loss(history: list[dict], metrics: dict) -> list[dict]:
    """Rows written before the loss was named per experiment say ``loss``/``test_loss`` where
    summary.json says ``mse``/``test_mse``: give the rows the summary's names, so one
    experiment's old and new runs show the same curves."""
    in_rows = {key for row in history for key in row}
    if "loss" not in in_rows or "loss" in metrics:
        return history
    held_out = {match.group(1) for key in metrics if (match := re.fullmatch(r"(?:test|val)_(\w+)", key))}
    names = [name for name in held_out if name in metrics and name not in in_rows]
    if len(names) != 1:
        return history
    renamed = {"loss": names[0], "test_loss": f"test_{names[0]}", "val_loss": f"val_{names[0]}"}
    return [{renamed.get(k, k): v for k, v in row.items()} for row in history]


def last_logged_metrics(history: list[dict]) -> dict:
    """An unfinished run's latest numbers: the last logged row of each model (tag)."""
    metrics: dict = {}
    for row in history:
        prefix = f"{row['tag']}_" if row.get("tag") else ""
        metrics.update({prefix + k: v for k, v in row.items() if k not in ROW_BOOKKEEPING})
    return metrics


def read_json_inside(path: Path, folder: Path) -> dict | None:
    """A JSON object from ``folder``; None (with a warning) when unreadable or a symlink out of it."""
    if not own_file(path, folder):
        return None
    try:
        data = read_json(path)
    except UserError as err:
        warn(f"{str(err).rstrip('.')}; skipped it.")
        return None
    return data if isinstance(data, dict) else None


def run_status(finished: bool, marker: dict) -> str:
    """finished, or why not: a search trial says (pruned, failed); any other run is unfinished."""
    if finished:
        return "finished"
    state = str(marker.get("state") or "")
    return state if state in ("pruned", "failed") else "unfinished"


def read_run(path: Path, root: Path) -> dict | None:
    """Everything a reader shows of one run directory; None when it is not a run or is unreadable."""
    params = read_json_inside(path / "params.json", path)
    if params is None or "experiment" not in params:
        return None  # unreadable (warned), or e.g. experiments/<name>/params.json: defaults, not a run
    summary: dict = {}
    if (path / "summary.json").exists():
        summary = read_json_inside(path / "summary.json", path)
        if summary is None:
            return None
    marker = (read_json_inside(path / "trial.json", path) or {}) if (path / "trial.json").exists() else {}
    best = summary.get("best") if isinstance(summary.get("best"), dict) else {}
    finished = bool(summary)
    history = read_history(path)
    if finished and isinstance(summary.get("metrics"), dict):
        history = rename_legacy_loss(history, summary["metrics"])
    metrics = summary.get("metrics") if finished else last_logged_metrics(history)
    objective = summary.get("objective") if isinstance(summary.get("objective"), dict) else {}
    relative = path.relative_to(root).as_posix()
    return {
        "path": path,
        "id": relative if relative != "." else path.name,
        "experiment": str(summary.get("experiment") or params["experiment"]),
        "run": str(summary.get("run") or path.name),
        "finished": finished,
        "status": run_status(finished, marker),
        "params": {k: v for k, v in params.items() if k != "experiment"},
        "metrics": metrics if isinstance(metrics, dict) else {},
        "best": best,
        "objective": objective,
        "wall_s": summary.get("wall_s"),
        "train_s": summary.get("train_s", history[-1].get("train_s") if history else None),
        "device": summary.get("device"),
        "seed": summary.get("seed", params.get("seed")),
        "study": summary.get("study", marker.get("study")),
        "trial": summary.get("trial", marker.get("trial")),
        "history": history,
        "figures": figure_files(path / "figures", path),
        "summary": summary,
    }


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def collect_runs(root: str | Path | None) -> list[dict]:
    """Every readable run directory below ``root``, by experiment, then run id in natural order."""
    root = existing_root(root)
    runs = []
    for params_path in root.rglob("params.json"):
        if _hidden(params_path.parent, root):
            continue
        run = read_run(params_path.parent, root)
        if run is not None:
            runs.append(run)
    if not runs:
        raise UserError(f"no run directories below {root} (none holds a readable params.json with an 'experiment'); "
                        f"make one with `torchclassics run <experiment>`.")
    return sorted(runs, key=lambda r: (r["experiment"], natural_key(r["id"])))


def by_experiment(runs: list[dict]) -> dict[str, list[dict]]:
    """Experiment name -> its runs, names in alphabetical order, runs in the order given."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(run["experiment"], []).append(run)
    return dict(sorted(groups.items()))


def status_counts(runs: list[dict]) -> dict[str, int]:
    return {status: sum(run["status"] == status for run in runs) for status in STATUSES}


def status_line(runs: list[dict]) -> str:
    """``12 runs: 9 finished, 2 pruned, 1 unfinished`` (statuses that occur)."""
    counts = ", ".join(f"{n} {status}" for status, n in status_counts(runs).items() if n)
    return f"{len(runs)} run{'s' if len(runs) != 1 else ''}: {counts}"


# -- which way is better ----------------------------------------------------------------
# Higher is better for accuracy-like metrics (accuracy, F1, precision, recall, AUC, R², IoU,
# score): those sort descending so the best run is on top. Everything else (loss, mse, mae,
# error, seconds) is lower-is-better and sorts ascending. A run's summary.json "objective"
# says it outright and wins over this guess.
HIGHER_IS_BETTER = ("f1", "precision", "recall", "auc", "r2", "iou", "score", "psnr", "ssim")


def higher_is_better(metric: str) -> bool:
    tokens = [t for t in re.split(r"[^a-z0-9]+", metric.lower()) if t]
    return any(t.startswith("acc") or t in HIGHER_IS_BETTER for t in tokens)


def objective(runs: list[dict]) -> dict:
    """``{"metric", "mode"}`` of an experiment: from summary.json's objective, else from the metric
    its best checkpoint followed (direction guessed from the name); {} when neither is known."""
    for run in runs:
        if run["objective"].get("metric") and run["objective"].get("mode") in ("min", "max"):
            return {"metric": str(run["objective"]["metric"]), "mode": run["objective"]["mode"]}
    for run in runs:
        if run["best"].get("metric"):
            metric = str(run["best"]["metric"])
            return {"metric": metric, "mode": "max" if higher_is_better(metric) else "min"}
    return {}


def maximised(metric: str, runs: list[dict]) -> bool:
    goal = objective(runs)
    return goal["mode"] == "max" if goal.get("metric") == metric else higher_is_better(metric)


# -- one experiment's table ----------------------------------------------------------------
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
    first = objective(runs).get("metric")
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


# -- sorting -------------------------------------------------------------------------------
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
        raise UserError(f"--sort {metric}: no run has that metric; the metrics there are: {', '.join(sorted(names))}.")


# -- formats -------------------------------------------------------------------------------
def format_cell(value) -> str:
    """Text for Markdown and HTML: 4 significant digits for floats, compact JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def numeric_columns(columns: list[str], rows: list[dict]) -> set[str]:
    """Columns of numbers (NaN included: a diverged run's) and blanks."""
    return {c for c in columns if any(numeric(r[c]) for r in rows) and all(r[c] is None or numeric(r[c]) for r in rows)}


def to_markdown(columns: list[str], rows: list[dict]) -> str:
    """A Markdown table padded to its widest cells, so it also reads in a terminal."""
    def cell(value) -> str:
        return format_cell(value).replace("|", "\\|").replace("\n", " ")

    cells = [[cell(row[c]) for c in columns] for row in rows]
    widths = [max([len(c), 3, *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    numeric = numeric_columns(columns, rows)

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.rjust(w) if c in numeric else v.ljust(w)
                                 for v, w, c in zip(values, widths, columns)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if c in numeric else "-" * (w + 2) for w, c in zip(widths, columns)) + "|"
    return "\n".join([line(columns), rule] + [line(values) for values in cells])


def to_csv(columns: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:  # full precision in CSV: it is read by programs
        writer.writerow(["" if row[c] is None else repr(row[c]) if isinstance(row[c], float)
                         else format_cell(row[c]) for c in columns])
    return buffer.getvalue().rstrip("\n")


def markdown_section(name: str, runs: list[dict], columns: list[str], rows: list[dict]) -> str:
    goal = objective(runs)
    aim = f" · objective {goal['metric']} ({'higher' if goal['mode'] == 'max' else 'lower'} is better)" if goal else ""
    return f"## {name}\n\n{status_line(runs)}{aim}\n\n{to_markdown(columns, rows)}"


def tables(runs: list[dict], sort: str | None) -> dict[str, tuple[list[dict], list[str], list[dict]]]:
    """Experiment -> (its runs in table order, columns, rows)."""
    found = {}
    for name, group in by_experiment(runs).items():
        if sort:
            group = sort_runs(group, sort)
        found[name] = (group, *experiment_table(group))
    return found


def only_experiment(runs: list[dict], experiment: str | None, root: Path) -> list[dict]:
    if experiment is None:
        return runs
    chosen = [run for run in runs if run["experiment"] == experiment]
    if not chosen:
        raise UserError(f"--experiment {experiment}: no runs of it below {root}; "
                        f"the experiments there are: {', '.join(by_experiment(runs))}.")
    return chosen


def synthesize(root: str | Path | None = None, fmt: str = "markdown", sort: str | None = None,
               experiment: str | None = None) -> str:
    """One table per experiment below ``root`` as ``fmt`` (CSV: one experiment, so one header);
    also writes ``root/results.md`` with the same tables in Markdown."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: choose one of {', '.join(FORMATS)}.")
    root = existing_root(root)
    runs = only_experiment(collect_runs(root), experiment, root)
    if sort:
        check_sort(runs, sort)
    found = tables(runs, sort)
    if fmt == "csv" and len(found) > 1:
        raise UserError(f"--format csv holds one table and {root} has runs of {len(found)} experiments "
                        f"({', '.join(found)}); add --experiment NAME, or use --format json.")
    markdown = "\n\n".join(markdown_section(name, *table) for name, table in found.items())
    try:
        atomic.write_text(root / "results.md", markdown + "\n")
    except OSError as err:  # a read-only folder of runs still gets its tables printed
        warn(f"could not write {root / 'results.md'}: {err.strerror or err}.")
    if fmt == "csv":
        (_, columns, rows), = found.values()
        return to_csv(columns, rows)
    if fmt == "json":  # experiment -> rows, each with that experiment's columns in order
        return json.dumps({name: [{c: row[c] for c in columns} for row in rows]
                           for name, (_, columns, rows) in found.items()}, indent=2, default=str)
    return markdown


def collect_studies(root: str | Path | None) -> list[dict]:
    """Search studies below ``root``: folders holding a ``best_params.json`` or an Optuna ``journal.log``."""
    root = existing_root(root)
    folders = {path.parent for name in ("best_params.json", "journal.log") for path in root.rglob(name)}
    studies = []
    for folder in sorted(folders, key=lambda p: natural_key(p.as_posix())):
        if _hidden(folder, root):
            continue
        facts = {}
        if (folder / "best_params.json").exists():
            facts = read_json_inside(folder / "best_params.json", folder) or {}
        journal = folder / "journal.log"
        studies.append({**facts, "name": str(facts.get("study") or folder.name), "path": folder,
                        "journal": journal if own_file(journal, folder) else None,
                        "figures": figure_files(folder, folder)})
    return studies

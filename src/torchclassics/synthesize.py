"""One table of every run below a folder (the CS230 ``synthesize_results.py``, for run directories).

    torchclassics synthesize runs/ --sort test_accuracy --format csv

A run directory is any folder holding a ``params.json`` with an ``experiment``
key; ``summary.json`` is there once it finished. The readers here never write
into a run; the only file written is ``results.md`` in the folder given.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from pathlib import Path

from .config import read_json
from .atomic import write_text as write_text_atomic
from .engine.rundir import read_metrics, runs_root
from .errors import UserError

FIGURE_TYPES = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".svg": "image/svg+xml", ".webp": "image/webp"}
# Bookkeeping in a metrics.jsonl row; what is left of the row are metrics.
ROW_BOOKKEEPING = ("epoch", "step", "lr", "train_s", "tag")
# Numbers of a run (not in its metrics) that --sort also accepts.
RUN_NUMBERS = ("wall_s", "train_s")
FORMATS = ("markdown", "csv", "json")


def warn(message: str) -> None:
    """One line on stderr: a damaged run is reported, and the others are still read."""
    print(f"torchclassics: warning: {message}", file=sys.stderr)


# -- reading ------------------------------------------------------------------------------
def existing_root(root: str | Path | None) -> Path:
    path = runs_root() if root is None else Path(root)
    if not path.exists():
        raise UserError(f"{path} does not exist; give the folder your runs are in (default: runs/ or $TORCHCLASSICS_RUNS).")
    if not path.is_dir():
        raise UserError(f"{path} is a file, not a folder of runs; give the folder that holds the run directories.")
    return path


def read_history(path: Path) -> list[dict]:
    """Rows of metrics.jsonl. A torn line (a run killed mid-write) is dropped with a warning, not the run."""
    rows, bad = read_metrics(path)
    if bad:
        warn(f"{path / 'metrics.jsonl'}: skipped {bad} unreadable line(s).")
    return rows


def figure_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FIGURE_TYPES)


def last_logged_metrics(history: list[dict]) -> dict:
    """An unfinished run's latest numbers: the last logged row of each model (tag)."""
    metrics: dict = {}
    for row in history:
        prefix = f"{row['tag']}_" if row.get("tag") else ""
        metrics.update({prefix + k: v for k, v in row.items() if k not in ROW_BOOKKEEPING})
    return metrics


def read_trial_marker(path: Path) -> dict:
    """search.py's ``trial.json`` (study, trial, state); {} when absent or unreadable (it is only a hint)."""
    if not (path / "trial.json").is_file():
        return {}
    try:
        return read_json(path / "trial.json")
    except UserError:
        return {}


def run_status(finished: bool, marker: dict) -> str:
    """finished, or why not: a search trial says (pruned, failed); any other run is unfinished."""
    if finished:
        return "finished"
    state = str(marker.get("state") or "")
    return state if state in ("pruned", "failed") else "unfinished"


def read_run(path: Path, root: Path) -> dict | None:
    """Everything a reader shows of one run directory; None when it is not a run or is unreadable."""
    try:
        params = read_json(path / "params.json")
    except UserError as err:
        warn(f"{str(err).rstrip('.')}; skipped that run.")
        return None
    if "experiment" not in params:
        return None  # e.g. experiments/<name>/params.json: defaults, not a run
    summary: dict = {}
    if (path / "summary.json").exists():
        try:
            summary = read_json(path / "summary.json")
        except UserError as err:
            warn(f"{str(err).rstrip('.')}; skipped that run.")
            return None
    history = read_history(path)
    marker = read_trial_marker(path)
    finished = bool(summary)
    metrics = summary.get("metrics") if finished else last_logged_metrics(history)
    best = summary.get("best") if isinstance(summary.get("best"), dict) else {}
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
        "wall_s": summary.get("wall_s"),
        "train_s": summary.get("train_s", history[-1].get("train_s") if history else None),
        "device": summary.get("device"),
        "seed": summary.get("seed", params.get("seed")),
        "study": summary.get("study", marker.get("study")),
        "trial": summary.get("trial", marker.get("trial")),
        "history": history,
        "figures": figure_files(path / "figures"),
        "summary": summary,
    }


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def collect_runs(root: str | Path | None) -> list[dict]:
    """Every readable run directory below ``root``, in sorted path order (the same on every machine)."""
    root = existing_root(root)
    runs = []
    for params_path in sorted(root.rglob("params.json")):
        if _hidden(params_path.parent, root):
            continue
        run = read_run(params_path.parent, root)
        if run is not None:
            runs.append(run)
    if not runs:
        raise UserError(f"no run directories below {root} (none holds a readable params.json with an 'experiment'); "
                        f"make one with `torchclassics run <experiment>`.")
    return runs


def collect_studies(root: str | Path | None) -> list[dict]:
    """Search studies below ``root``: each ``studies/<name>/best_params.json`` with its figures."""
    root = existing_root(root)
    studies = []
    for path in sorted(root.rglob("best_params.json")):
        if _hidden(path.parent, root):
            continue
        try:
            data = read_json(path)
        except UserError as err:
            warn(f"{str(err).rstrip('.')}; skipped that study.")
            continue
        figures = figure_files(path.parent)
        # history.png first: it is the figure a study is about
        figures.sort(key=lambda p: (p.name != "history.png", p.as_posix()))
        studies.append({**data, "name": str(data.get("study") or path.parent.name), "path": path.parent,
                        "figures": figures})
    return studies


# -- the table -------------------------------------------------------------------------------
def _comparable(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def varying_params(runs: list[dict]) -> list[str]:
    """Parameters whose value differs between runs of the same experiment (missing counts as a value).

    Comparing within an experiment keeps out the parameters that merely belong to
    another experiment (n_points vs. channels), which say nothing about a comparison."""
    by_experiment: dict[str, list[dict]] = {}
    for run in runs:
        by_experiment.setdefault(run["experiment"], []).append(run["params"])
    varying = set()
    for params_list in by_experiment.values():
        for key in set().union(*params_list):
            if len({_comparable(p.get(key, "\0missing")) for p in params_list}) > 1:
                varying.add(key)
    order = {key: i for i, key in enumerate(k for run in runs for k in run["params"])}
    return sorted(varying, key=lambda k: order[k])


def metric_names(runs: list[dict]) -> list[str]:
    """The union over runs: train metrics, then held-out ones (test_), each alphabetical."""
    names = {name for run in runs for name in run["metrics"]}
    return sorted(names, key=lambda n: (n.startswith("test_"), n))


def table(runs: list[dict]) -> tuple[list[str], list[dict]]:
    """(columns, rows): one row per run, raw values, None where a run lacks a column."""
    params, metrics = varying_params(runs), metric_names(runs)
    param_columns = {key: (f"param.{key}" if key in metrics or key in RUN_NUMBERS else key) for key in params}
    study_columns = ["study", "trial"] if any(run["study"] is not None for run in runs) else []
    columns = (["experiment", "run", "status"] + study_columns + list(param_columns.values()) + metrics
               + ["best_metric", "best_value", "best_epoch", "wall_s"])
    rows = []
    for run in runs:
        row = {"experiment": run["experiment"], "run": run["run"], "status": run["status"]}
        if study_columns:
            row.update(study=run["study"], trial=run["trial"])
        row.update({column: run["params"].get(key) for key, column in param_columns.items()})
        row.update({name: run["metrics"].get(name) for name in metrics})
        row.update(best_metric=run["best"].get("metric"), best_value=run["best"].get("value"),
                   best_epoch=run["best"].get("epoch"), wall_s=run["wall_s"])
        rows.append(row)
    return columns, rows


# -- sorting -------------------------------------------------------------------------------
# Higher is better for accuracy-like metrics (accuracy, F1, precision, recall, AUC, R², IoU,
# score): those sort descending so the best run is on top. Everything else (loss, mse, mae,
# error, seconds) is lower-is-better and sorts ascending.
HIGHER_IS_BETTER = ("f1", "precision", "recall", "auc", "r2", "iou", "score", "psnr", "ssim")


def higher_is_better(metric: str) -> bool:
    tokens = [t for t in re.split(r"[^a-z0-9]+", metric.lower()) if t]
    return any(t.startswith("acc") or t in HIGHER_IS_BETTER for t in tokens)


def number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def run_value(run: dict, name: str):
    return run["metrics"][name] if name in run["metrics"] else run.get(name) if name in RUN_NUMBERS else None


def sort_runs(runs: list[dict], metric: str) -> list[dict]:
    """Best first by ``metric``; runs without a number for it go last, in their old order."""
    available = metric_names(runs) + [n for n in RUN_NUMBERS if any(number(r.get(n)) is not None for r in runs)]
    if metric not in available:
        raise UserError(f"--sort {metric}: no run has that metric; the metrics there are: {', '.join(available)}.")
    sign = -1.0 if higher_is_better(metric) else 1.0
    with_value = [r for r in runs if number(run_value(r, metric)) is not None]
    without = [r for r in runs if number(run_value(r, metric)) is None]
    return sorted(with_value, key=lambda r: sign * number(run_value(r, metric))) + without


# -- formats -------------------------------------------------------------------------------
def format_cell(value) -> str:
    """Text for Markdown and CSV: 4 significant digits for floats, compact JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def to_markdown(columns: list[str], rows: list[dict]) -> str:
    def cell(value) -> str:
        return format_cell(value).replace("|", "\\|").replace("\n", " ")

    numeric = {c for c in columns if any(number(r[c]) is not None for r in rows)
               and all(r[c] is None or number(r[c]) is not None for r in rows)}
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if c in numeric else "---" for c in columns) + "|"]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def to_csv(columns: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:  # full precision in CSV: it is read by programs
        writer.writerow(["" if row[c] is None else repr(row[c]) if isinstance(row[c], float)
                         else format_cell(row[c]) for c in columns])
    return buffer.getvalue().rstrip("\n")


def to_json(columns: list[str], rows: list[dict]) -> str:
    return json.dumps([{c: row[c] for c in columns} for row in rows], indent=2, default=str)


def synthesize(root: str | Path | None = None, fmt: str = "markdown", sort: str | None = None) -> str:
    """The table of every run below ``root`` as ``fmt``; also writes ``root/results.md`` (Markdown)."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: choose one of {', '.join(FORMATS)}.")
    root = existing_root(root)
    runs = collect_runs(root)
    if sort:
        runs = sort_runs(runs, sort)
    columns, rows = table(runs)
    markdown = to_markdown(columns, rows)
    try:
        write_text_atomic(root / "results.md", markdown + "\n")
    except OSError as err:  # a read-only folder of runs still gets its table printed
        warn(f"could not write {root / 'results.md'}: {err.strerror or err}.")
    return {"markdown": lambda: markdown, "csv": lambda: to_csv(columns, rows),
            "json": lambda: to_json(columns, rows)}[fmt]()

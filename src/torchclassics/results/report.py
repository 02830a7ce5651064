"""One self-contained HTML page for comparing runs: ``torchclassics report runs/``.

The page opens from disk with no server and no network, so it can be mailed or
committed beside a course report. It has an overview (each experiment's best
held-out metrics), one view per experiment (its metrics first, then only the
parameters that vary; sortable, filterable; the curves of ticked runs overlaid,
a metric-vs-parameter scatter and the parameter diff of the ticked runs), and
per search study Optuna's own plots.

How it is built, and why:

- Jinja2 with autoescape renders every text that comes from a run; data for the
  charts is embedded once as JSON through Jinja's ``tojson`` (safe inside
  ``<script>``).
- Charts are Plotly: ``optuna.visualization`` returns Plotly figures, so the
  study plots and the run charts share one library, with log axes, hover, zoom
  and legend toggling built in. The page inlines plotly.js once, so it works
  offline: Plotly's "basic" bundle (scatter, bar, pie: every chart here; 1.2 MB,
  templates/plotly-basic.min.js, the npm package plotly.js-basic-dist-min of the
  plotly.js version the plotly Python package ships), which runs in a fifth of
  the time of the full plotly.min.js; the full one (4.8 MB, from the plotly
  package) only when a study figure needs another kind of trace.
- A Content-Security-Policy allows the page's own two scripts (by hash) and
  nothing fetched: images are ``data:`` URIs, or with ``link_figures`` files
  beside the page.
- Figures are checked before they are shown: a file that a symlink leads out of
  its run is skipped, so is a hidden file (a killed write's temporary file), and
  only what PIL verifies as an image is embedded or linked. They sit in
  ``<template>`` elements, inert until their run's row is opened.
- One bad run never stops the page: runs that cannot be read or shown are listed
  on the overview with the reason, and runs that contradict themselves are
  flagged there and in their own details (:mod:`.runs`).
- The page never replaces a file that is not an earlier report (``force`` to
  replace one), and never a file of a run's record (:mod:`.output`).
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import time
import urllib.parse
from pathlib import Path

from ..core import messages
from ..core.errors import UserError
from ..rundir import layout
from ..rundir.metrics import BOOKKEEPING, is_held_out, split_of
from . import output as outputs
from . import studies
from .runs import (
    STATUSES,
    Found,
    by_experiment,
    check_found,
    collect_studies,
    existing_root,
    printable,
    read_runs,
    status_counts,
)
from .table import (
    experiment_table,
    finite,
    flat_params,
    format_cell,
    metric_columns,
    number,
    numeric,
    numeric_columns,
    objective,
    sort_runs,
)

TEMPLATES = Path(__file__).with_name("templates")
BASIC_TRACES = {"scatter", "bar", "pie"}  # what templates/plotly-basic.min.js can draw
# What PIL may call an embeddable image, and the type the browser is told.
IMAGE_MIME = {"PNG": "image/png", "GIF": "image/gif", "JPEG": "image/jpeg", "WEBP": "image/webp"}


# -- figures: verified images only --------------------------------------------------------
def image_source(path: Path, page_dir: Path | None) -> str | None:
    """A ``data:`` URI of the image (or, given ``page_dir``, its address relative to the page);
    None, with a warning, when PIL cannot open and verify it as a PNG, GIF, JPEG or WebP."""
    try:
        data = path.resolve().read_bytes()  # resolved: what was checked to lie inside the run
    except OSError as err:
        messages.warn(f"{path}: cannot read it ({err.strerror or err}); not shown.")
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()
    except UnidentifiedImageError:
        messages.warn(f"{path}: not an image; not shown.")
        return None
    except Exception as err:  # PIL raises many kinds of error for a damaged image
        messages.warn(f"{path}: a damaged image ({err}); not shown.")
        return None
    if kind not in IMAGE_MIME:
        messages.warn(f"{path}: a {kind} image; only PNG, GIF, JPEG and WebP are shown.")
        return None
    if page_dir is not None:
        return urllib.parse.quote(Path(os.path.relpath(path, page_dir)).as_posix())
    return f"data:{IMAGE_MIME[kind]};base64,{base64.b64encode(data).decode('ascii')}"


def figures_of(paths: list[Path], folder: Path, page_dir: Path | None) -> list[dict]:
    shown = [{"name": printable(path.relative_to(folder).as_posix()), "src": image_source(path, page_dir)}
             for path in paths]
    return [figure for figure in shown if figure["src"] is not None]


# -- JSON for the page's charts ------------------------------------------------------------
def curves(history: list[dict]) -> list[dict]:
    """Every metric of the training rows as one series per (metric, model tag): x is the epoch."""
    series: dict[tuple[str, str], dict] = {}
    for index, row in enumerate(history, start=1):
        x = number(row.get("epoch", row.get("step", index)))
        for key, value in row.items():
            if key not in BOOKKEEPING and numeric(value):  # NaN kept: a gap where a run diverged
                line = series.setdefault((key, str(row.get("tag") or "")),
                                         {"metric": key, "tag": str(row.get("tag") or ""), "x": [], "y": []})
                line["x"].append(x)
                line["y"].append(value)
    return list(series.values())


def default_curve_metrics(names: list[str], goal) -> list[str]:
    """The objective (held-out) and its train counterpart, so the first overlay shows over-fitting."""
    metric = goal.metric if goal is not None else None
    held_out = metric if metric in names else next((n for n in names if is_held_out(n)), None)
    if held_out is None:
        return names[:1]
    split, train = split_of(held_out)
    train = train if split is not None else None
    return [held_out] + ([train] if train in names else [])


# -- one experiment's view -----------------------------------------------------------------
def table_cells(columns: list[str], row: dict) -> list[dict]:
    cells = []
    for column in columns:
        value = row[column]
        sort = number(value)
        shown = sort is not None and math.isfinite(sort)
        cells.append({"text": format_cell(value), "sort": repr(sort) if shown else None,
                      "status": value if column == "status" else None})
    return cells


def experiment_view(index: int, name: str, runs: list[dict], keys: dict[int, str], page_dir: Path | None) -> dict:
    columns, rows = experiment_table(runs)
    status_at = columns.index("status")
    goal = objective(runs)
    numeric = numeric_columns(columns, rows)
    view_rows, chart_runs = [], {}
    for run, row in zip(runs, rows):
        key = keys[id(run)]
        facts = {"id": run["id"], "device": run["device"], "seed": run["seed"], "wall_s": run["wall_s"],
                 "study": run["study"], "trial": run["trial"]}
        view_rows.append({"key": key, "label": run["run"], "status": run["status"], "cells": table_cells(columns, row),
                          "facts": {k: v for k, v in facts.items() if v is not None}, "problems": run["problems"],
                          "params": flat_params(run["params"]), "metrics": run["metrics"], "best": run["best"],
                          "figures": figures_of(run["figures"], run["path"] / layout.FIGURES, page_dir)})
        chart_runs[key] = {"label": run["run"], "params": flat_params(run["params"]),
                           "values": {c: row[c] for c in columns[1:] if c != "status"},
                           "curves": curves(run["history"])}
    curve_metrics = list(dict.fromkeys(line["metric"] for run in chart_runs.values() for line in run["curves"]))
    held_out = [metric for metric in curve_metrics if is_held_out(metric)]  # drawn solid, the others dotted
    return {
        "view": f"experiment-{index}", "name": name, "runs": runs, "counts": status_counts(runs), "objective": goal,
        "columns": [{"name": c, "kind": "metric" if i <= status_at else "param"} for i, c in enumerate(columns)],
        "rows": view_rows,
        "chart": {"view": f"experiment-{index}", "name": name, "runs": chart_runs, "curve_metrics": curve_metrics,
                  "held_out": held_out,
                  "default_metrics": default_curve_metrics(curve_metrics, goal),
                  "scatter_y": [c for c in columns[1:status_at] if c in numeric],
                  "scatter_x": columns[status_at + 1:]},
    }


def overview_row(view: dict, keys: dict[int, str]) -> dict:
    """An experiment on the first screen: its run counts and the best run's held-out metrics."""
    runs, goal = view["runs"], view["objective"]
    best = sort_runs(runs, goal.metric)[0] if goal else runs[0]
    return {"view": view["view"], "name": view["name"], "counts": view["counts"], "objective": goal,
            "best_run": best["run"], "best_key": keys[id(best)],
            "metrics": [(name, format_cell(best["metrics"][name])) for name in metric_columns(runs)
                        if best["metrics"].get(name) is not None]}


# -- search studies ------------------------------------------------------------------------
def load_study(study: dict):
    """(optuna study, None), or (None, why not). The journal is only read, never locked or written."""
    if study["journal"] is None:
        return None, "no journal.log beside best_params.json (a study in a database is not read)"
    return studies.load_study(study["journal"], study["name"])


def study_view(index: int, study: dict, trial_keys: dict, page_dir: Path | None) -> dict:
    loaded, note = load_study(study)
    facts = {k: study.get(k) for k in ("metric", "direction", "best_value", "best_trial", "n_trials")
             if study.get(k) is not None}
    trials, states, figures = [], {}, []
    if loaded is not None:
        facts.setdefault("direction", loaded.direction.name.lower())
        for trial in loaded.get_trials(deepcopy=False):
            state = trial.state.name.lower()
            states[state] = states.get(state, 0) + 1
            trials.append({"number": trial.number, "state": state, "value": format_cell(trial.value),
                           "params": format_cell(trial.params), "key": trial_keys.get((study["name"], trial.number))})
        figures = studies.plotly_figures(loaded)
    return {"view": f"study-{index}", "name": study["name"], "path": study["path"].as_posix(), "facts": facts,
            "best_params": study.get("best_params") if isinstance(study.get("best_params"), dict) else {},
            "states": states, "trials": trials, "note": note,
            "plots": [{"id": f"study-{index}-plot-{i}", **figure} for i, figure in enumerate(figures)],
            # without Optuna's plots, the history.png search drew is the next best thing
            "images": figures_of(study["figures"], study["path"], page_dir) if loaded is None else []}


# -- the page ------------------------------------------------------------------------------
def script_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(scripts: list[str], link_figures: bool) -> str:
    """Only the page's own scripts run; nothing is fetched but images beside the page when linked."""
    images = "data: 'self' file:" if link_figures else "data:"
    return (f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; "
            f"script-src {' '.join(script_hash(s) for s in scripts)}")


def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    # Compact JSON, and an error rather than NaN (which JSON.parse refuses) if one slipped through.
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "allow_nan": False}
    env.filters["cell"] = lambda value: "null" if value is None else format_cell(value)
    return env


def plotly_template() -> dict:
    import plotly.io

    return json.loads(plotly.io.json.to_json_plotly(plotly.io.templates["plotly_white"].to_plotly_json()))


def plotly_js(study_views: list[dict]) -> str:
    """The basic bundle, unless a study figure holds a trace it cannot draw (the run charts are scatters)."""
    traces = {trace.get("type", "scatter") for study in study_views for plot in study["plots"] if "figure" in plot
              for trace in plot["figure"]["data"]}
    if traces <= BASIC_TRACES:
        return (TEMPLATES / "plotly-basic.min.js").read_text(encoding="utf-8")
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def flagged_runs(runs: list[dict], keys: dict[int, str]) -> list[dict]:
    return [{"key": keys[id(run)], "name": run["id"], "experiment": run["experiment"], "problems": run["problems"]}
            for run in runs if run["problems"]]


def page(root: Path, found: Found, studies: list[dict], page_dir: Path | None) -> str:
    from markupsafe import Markup

    runs = found.runs
    keys = {id(run): f"r{i}" for i, run in enumerate(runs)}
    experiments = [experiment_view(i, name, group, keys, page_dir)
                   for i, (name, group) in enumerate(by_experiment(runs).items())]
    trial_keys = {(str(run["study"]), run["trial"]): keys[id(run)] for run in runs if run["study"] is not None}
    study_views = [study_view(i, study, trial_keys, page_dir) for i, study in enumerate(studies)]
    data = finite({"template": plotly_template(), "experiments": [e["chart"] for e in experiments],
                   "studies": [{"view": s["view"], "plots": [p for p in s["plots"] if "figure" in p]}
                               for s in study_views]})
    plotly, script = plotly_js(study_views), (TEMPLATES / "report.js").read_text(encoding="utf-8")
    return environment().get_template("report.html.j2").render(
        title=printable(f"torchclassics report: {root.as_posix()}"), root=printable(str(root.resolve())),
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        csp=content_security_policy([plotly, script], page_dir is not None),
        total=len(runs), counts=status_counts(runs), statuses=STATUSES,
        experiments=experiments, overview=[overview_row(e, keys) for e in experiments], studies=study_views,
        skipped=found.skipped, flagged=flagged_runs(runs, keys),
        style=Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")), data=data,
        plotly=Markup(plotly), script=Markup(script))


def write_report(root: str | Path | None = None, output: str | Path | None = None, link_figures: bool = False,
                 force: bool = False) -> Path:
    """Write the page (default ``<root>/report.html``) and return its path.

    ``link_figures``: the page links the figures where they are (relative to the page)
    instead of embedding them: a small page for hundreds of runs, which needs the
    run folders beside it to show the figures. ``force``: replace ``output`` even when
    it is not an earlier report (never a file of a run's record)."""
    messages.console()
    root = existing_root(root)
    target = Path(output) if output is not None else root / layout.REPORT
    outputs.check_target(target, outputs.REPORT, force, option="output" if output is not None else None)
    found = read_runs(root)
    check_found(found)
    html = page(root, found, collect_studies(root), target.resolve().parent if link_figures else None)
    try:
        outputs.write(target, outputs.REPORT, html)
    except OSError as err:
        raise UserError.for_option("output", str(target), f"cannot write the report: {err.strerror or err}; choose "
                                   "another output.") from None
    return target

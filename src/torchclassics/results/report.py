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
  nothing fetched but images: ``data:`` URIs, and the figures linked beside the page.
- Figures (:class:`Figures`): embedded for the runs that matter (each experiment's
  and each study's best run, and the runs named in ``figures``), linked, relative to
  the page, for the others (``embed_all``, ``link_figures``: all one way). Embedded
  ones are verified whole by PIL, linked ones by their header; a file that a symlink
  leads out of its run is skipped, so is a hidden file (a killed write's temporary
  file). They sit in ``<template>`` elements, inert until their run's row is opened.
- Thousands of runs: every run has its row in the page, but a view lays out one page
  of rows at a time (report.js), and lists its best run first, marked.
- Studies of one experiment and metric are compared in a view of their own (each
  study's best value so far on one chart; :func:`.studies.comparison`).
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
from dataclasses import dataclass
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
    run_value,
    sort_runs,
)

TEMPLATES = Path(__file__).with_name("templates")
BASIC_TRACES = {"scatter", "bar", "pie"}  # what templates/plotly-basic.min.js can draw
# What PIL may call an embeddable image, and the type the browser is told.
IMAGE_MIME = {"PNG": "image/png", "GIF": "image/gif", "JPEG": "image/jpeg", "WEBP": "image/webp"}


# -- figures: verified images only --------------------------------------------------------
def image_source(path: Path, page_dir: Path | None) -> str | None:
    """A ``data:`` URI of the image (or, given ``page_dir``, its address relative to the page);
    None, with a warning, when PIL cannot open it as a PNG, GIF, JPEG or WebP. An embedded image is
    verified whole; a linked one by its header only (a report links thousands, which the browser reads
    only when their run is opened, and shows as broken if damaged)."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = path.resolve().read_bytes() if page_dir is None else None  # resolved: what was checked to lie inside
        with Image.open(io.BytesIO(data) if data is not None else path.resolve()) as image:
            kind = image.format
            if data is not None:
                image.verify()
    except UnidentifiedImageError:
        messages.warn(f"{path}: not an image; not shown.")
        return None
    except OSError as err:
        if err.errno is None:  # PIL's own OSError: a truncated or damaged image
            messages.warn(f"{path}: a damaged image ({err}); not shown.")
        else:
            messages.warn(f"{path}: cannot read it ({err.strerror or err}); not shown.")
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
def plotted(value):
    """A value as a chart needs it: 6 significant digits (a page of thousands of runs carries every epoch of
    each; the table and details show 4)."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.6g}")
    return value


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
                line["y"].append(plotted(value))
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


# -- which figures the page embeds ------------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    """Which runs' figures the page embeds (``data:`` URIs); the others' are linked, relative to the page,
    and read by the browser only when their run is opened. Embedding every figure of 500 runs made a
    192 MB page that took 80 s to open: by default only the runs that matter are embedded."""

    page: Path                      # the page's folder
    embedded: frozenset[int]        # id() of the runs whose figures are embedded
    link_all: bool = False

    def embeds(self, run: dict) -> bool:
        return not self.link_all and id(run) in self.embedded

    def page_dir(self, run: dict) -> Path | None:
        return None if self.embeds(run) else self.page

    def links_any(self, runs: list[dict]) -> bool:
        return any(run["figures"] and not self.embeds(run) for run in runs)


def matching_run(runs: list[dict], name: str) -> dict | None:
    """The run a user names: as the tables show it, by its path below the root, or by its folder."""
    for run in runs:
        if name in (run["run"], run["id"]):
            return run
    wanted = Path(name).resolve()
    return next((run for run in runs if run["path"].resolve() == wanted), None)


def runs_that_matter(runs: list[dict], named: list[str], root: Path) -> list[dict]:
    """The best run of each experiment and of each search study among them, and the runs named."""
    chosen = [best_run(group) for group in by_experiment(runs).values()]
    by_study: dict[tuple, list[dict]] = {}
    for run in runs:
        if run["study"] is not None:
            by_study.setdefault((run["experiment"], str(run["study"])), []).append(run)
    chosen += [best_run(group) for group in by_study.values()]
    for name in named:
        run = matching_run(runs, name)
        if run is None:
            example = runs[0]["run"]
            raise UserError.for_option("figures", name, f"no run of that name below {root}; name a run as the "
                                       f"report's tables show it (e.g. {example}), or its folder.")
        chosen.append(run)
    return chosen


def figure_policy(runs: list[dict], root: Path, page: Path, link_figures: bool, embed_all: bool,
                  named: list[str]) -> Figures:
    if embed_all:
        return Figures(page, frozenset(id(run) for run in runs))
    chosen = runs_that_matter(runs, named, root)
    return Figures(page, frozenset(id(run) for run in chosen), link_all=link_figures)


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


def best_run(runs: list[dict]) -> dict:
    """The experiment's best run by its objective (the first when there is none)."""
    goal = objective(runs)
    return sort_runs(runs, goal.metric)[0] if goal else runs[0]


def best_first(runs: list[dict]) -> list[dict]:
    best = best_run(runs)
    return [best] + [run for run in runs if run is not best]


def experiment_view(index: int, name: str, runs: list[dict], keys: dict[int, str], sources: Figures) -> dict:
    runs = best_first(runs)
    columns, rows = experiment_table(runs)
    status_at = columns.index("status")
    goal = objective(runs)
    numeric = numeric_columns(columns, rows)
    has_best = goal is not None and number(run_value(runs[0], goal.metric)) is not None  # marked only when measured
    view_rows, chart_runs = [], {}
    for run, row in zip(runs, rows):
        key = keys[id(run)]
        facts = {"id": run["id"], "device": run["device"], "seed": run["seed"], "wall_s": run["wall_s"],
                 "study": run["study"], "trial": run["trial"]}
        view_rows.append({"key": key, "label": run["run"], "status": run["status"], "cells": table_cells(columns, row),
                          "facts": {k: v for k, v in facts.items() if v is not None}, "problems": run["problems"],
                          "params": flat_params(run["params"]), "metrics": run["metrics"], "best": run["best"],
                          "is_best": run is runs[0] and has_best, "embedded": sources.embeds(run),
                          "figures": figures_of(run["figures"], run["path"] / layout.FIGURES, sources.page_dir(run))})
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
    best = runs[0]  # the view lists its best run first
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


def study_view(index: int, study: dict, loaded_study, note: str | None, trial_keys: dict,
               page_dir: Path | None) -> dict:
    facts = {k: study.get(k) for k in ("metric", "direction", "sampler", "best_value", "best_trial", "n_trials")
             if study.get(k) is not None}
    trials, states, figures, importances = [], {}, [], []
    if loaded_study is not None:
        facts.setdefault("direction", loaded_study.direction.name.lower())
        for trial in loaded_study.get_trials(deepcopy=False):
            state = trial.state.name.lower()
            states[state] = states.get(state, 0) + 1
            trials.append({"number": trial.number, "state": state, "value": format_cell(trial.value),
                           "params": format_cell(trial.params), "baseline": trial.user_attrs.get("baseline") is True,
                           "key": trial_keys.get((study["name"], trial.number))})
        figures = studies.plotly_figures(loaded_study)
        importances = [(name, format_cell(share)) for name, share in studies.param_importances(loaded_study).items()]
    return {"view": f"study-{index}", "name": study["name"], "path": study["path"].as_posix(), "facts": facts,
            "best_params": study.get("best_params") if isinstance(study.get("best_params"), dict) else {},
            "states": states, "trials": trials, "note": note, "importances": importances,
            "plots": [{"id": f"study-{index}-plot-{i}", **figure} for i, figure in enumerate(figures)],
            # without Optuna's plots, the history.png search drew is the next best thing
            "images": figures_of(study["figures"], study["path"], page_dir) if loaded_study is None else []}


def study_experiment(study: dict, loaded_study) -> str | None:
    """The experiment a study searched: best_params.json says, or the study remembers (search sets both)."""
    name = study.get("experiment") or loaded_study.user_attrs.get("experiment")
    return name if isinstance(name, str) and name else None


def comparison_views(studies_found: list[dict], loaded: list) -> list[dict]:
    """One view per experiment and metric searched by two studies or more: their histories on one chart, and
    each study's best, baseline and trials to come within 5 % of the best of all."""
    groups: dict[tuple, list] = {}
    for study, (loaded_study, _) in zip(studies_found, loaded):
        experiment = study_experiment(study, loaded_study) if loaded_study is not None else None
        if experiment is not None:
            key = (experiment, studies.target_name(loaded_study), loaded_study.direction.name)
            groups.setdefault(key, []).append((study["name"], loaded_study))
    views = []
    for (experiment, metric, _), named in sorted(groups.items()):
        if len(named) < 2:
            continue
        compared = studies.comparison(named)
        rows = [{**row, "best_value": format_cell(row["best_value"]), "baseline": format_cell(row["baseline"])}
                for row in compared["rows"]]
        views.append({"view": f"compare-{len(views)}", "id": f"compare-{len(views)}-plot", "experiment": experiment,
                      "metric": metric, "direction": compared["direction"], "best": format_cell(compared["best"]),
                      "within": f"{studies.WITHIN:.0%}", "rows": rows, "figure": compared["figure"]})
    return views


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
    env.filters["breakable"] = breakable
    return env


def breakable(name: str):
    """A column's name that may wrap after its underscores and dots (``Momentum_test_mse``), so that a table
    of many metrics fits 1280 px instead of being cut off at the side."""
    from markupsafe import Markup, escape

    return Markup(str(escape(name)).replace("_", "_<wbr>").replace(".", ".<wbr>"))


def plotly_template() -> dict:
    import plotly.io

    return json.loads(plotly.io.json.to_json_plotly(plotly.io.templates["plotly_white"].to_plotly_json()))


def plotly_js(study_views: list[dict]) -> str:
    """The basic bundle, unless a study figure holds a trace it cannot draw (the run charts are scatters)."""
    traces = {trace.get("type", "scatter") for study in study_views for plot in study.get("plots", [])
              if "figure" in plot for trace in plot["figure"]["data"]}
    if traces <= BASIC_TRACES:
        return (TEMPLATES / "plotly-basic.min.js").read_text(encoding="utf-8")
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def flagged_runs(runs: list[dict], keys: dict[int, str]) -> list[dict]:
    return [{"key": keys[id(run)], "name": run["id"], "experiment": run["experiment"], "problems": run["problems"]}
            for run in runs if run["problems"]]


def page(root: Path, found: Found, studies_found: list[dict], sources: Figures) -> str:
    from markupsafe import Markup

    runs = found.runs
    keys = {id(run): f"r{i}" for i, run in enumerate(runs)}
    experiments = [experiment_view(i, name, group, keys, sources)
                   for i, (name, group) in enumerate(by_experiment(runs).items())]
    trial_keys = {(str(run["study"]), run["trial"]): keys[id(run)] for run in runs if run["study"] is not None}
    loaded = [load_study(study) for study in studies_found]  # each journal read once
    study_page_dir = sources.page if sources.link_all else None
    study_views = [study_view(i, study, *pair, trial_keys, study_page_dir)
                   for i, (study, pair) in enumerate(zip(studies_found, loaded))]
    comparisons = comparison_views(studies_found, loaded)
    data = finite({"template": plotly_template(), "experiments": [e["chart"] for e in experiments],
                   "studies": [{"view": s["view"], "plots": [p for p in s["plots"] if "figure" in p]}
                               for s in study_views]
                   + [{"view": c["view"], "plots": [{"id": c["id"], "figure": c["figure"]}]} for c in comparisons],
                   "run_views": {row["key"]: e["view"] for e in experiments for row in e["rows"]}})
    plotly, script = plotly_js(study_views), (TEMPLATES / "report.js").read_text(encoding="utf-8")
    return environment().get_template("report.html.j2").render(
        title=printable(f"torchclassics report: {root.as_posix()}"), root=printable(str(root.resolve())),
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        csp=content_security_policy([plotly, script], sources.links_any(runs)),
        total=len(runs), counts=status_counts(runs), statuses=STATUSES,
        experiments=experiments, overview=[overview_row(e, keys) for e in experiments], studies=study_views,
        comparisons=comparisons, skipped=found.skipped, flagged=flagged_runs(runs, keys),
        embedded=sum(sources.embeds(run) for run in runs if run["figures"]),
        with_figures=sum(bool(run["figures"]) for run in runs),
        style=Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")), data=data,
        plotly=Markup(plotly), script=Markup(script))


def write_report(root: str | Path | None = None, output: str | Path | None = None, link_figures: bool = False,
                 force: bool = False, embed_all: bool = False, figures: list[str] | tuple[str, ...] = ()) -> Path:
    """Write the page (default ``<root>/report.html``) and return its path.

    Figures: by default the page embeds those of the runs that matter (the best run of each experiment and
    of each search study, and the runs named in ``figures``, by name as the tables show it or by folder) and
    links the others where they are (relative to the page: they show while the run folders stay beside it).
    ``embed_all``: embed every run's figures (a page that travels alone, large for hundreds of runs);
    ``link_figures``: link every figure (the smallest page). ``force``: replace ``output`` even when it is not
    an earlier report (never a file of a run's record)."""
    messages.console()
    if embed_all and link_figures:
        raise UserError.for_option("embed_all", "True", "and link_figures ask for opposite things; choose one.")
    root = existing_root(root)
    target = Path(output) if output is not None else root / layout.REPORT
    outputs.check_target(target, outputs.REPORT, force, option="output" if output is not None else None)
    found = read_runs(root)
    check_found(found)
    sources = figure_policy(found.runs, root, target.resolve().parent, link_figures, embed_all, list(figures))
    html = page(root, found, collect_studies(root), sources)
    try:
        outputs.write(target, outputs.REPORT, html)
    except OSError as err:
        raise UserError.for_option("output", str(target), f"cannot write the report: {err.strerror or err}; choose "
                                   "another output.") from None
    return target

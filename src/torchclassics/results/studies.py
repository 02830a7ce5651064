"""The one study-figure pipeline: which plots a search study gets, and each drawn by Optuna's own
visualisation, as a PNG file (its matplotlib backend; search writes these beside the study) or as
Plotly JSON (the HTML report).

Both renderings come from the same list (:data:`STUDY_PLOTS`), the same checks of what a study is
too small for (:func:`plot_notes`) and the same data preparation (pruned trials in the history at
their last reported value, a log axis when the values span a wide range, seeded fANOVA
importances, the study's metric as the axis name). Reading a study never writes it: a journal is
opened read-only (:func:`load_study`), never locked, never created.
"""
from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..core import messages
from ..core.files import replaced_atomically

# fANOVA fits a random forest to the finished trials; on fewer its shares mean nothing.
MIN_TRIALS_FOR_IMPORTANCES = 3
# Objective values spanning more than this factor get a log axis in the history.
LOG_SPAN = 20.0
PRUNED_NAME = "Pruned trial (last reported value)"


@dataclass(frozen=True)
class StudyPlot:
    key: str        # the PNG's file stem, and the name search returns it under
    title: str
    function: str   # the same name in optuna.visualization and optuna.visualization.matplotlib
    png: bool       # search writes <key>.png beside the study
    html: bool      # the report shows it


# Parallel coordinates and intermediate values read well only interactively: HTML only. Contours need
# plotly's full bundle (4.8 MB instead of 1.2 MB for every report): PNG only.
STUDY_PLOTS = (
    StudyPlot("history", "Optimisation history", "plot_optimization_history", png=True, html=True),
    StudyPlot("importances", "Parameter importances", "plot_param_importances", png=True, html=True),
    StudyPlot("parallel", "Parallel coordinates", "plot_parallel_coordinate", png=False, html=True),
    StudyPlot("slice", "Slices", "plot_slice", png=True, html=True),
    StudyPlot("contour", "Contours", "plot_contour", png=True, html=False),
    StudyPlot("intermediate", "Intermediate values", "plot_intermediate_values", png=False, html=True),
)


@contextlib.contextmanager
def quiet_optuna() -> Iterator:
    """Optuna logs (and warns about) studies too small for a plot and its experimental features; the
    figures and our own one-line messages say enough."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield optuna
    finally:
        optuna.logging.set_verbosity(level)


# -- reading a study ------------------------------------------------------------------------------
def load_study(journal: Path, name: str):
    """(study, None) or (None, why not): the study ``name`` of the Optuna journal file ``journal``, or
    its only study when none has that name. The file is only read: never created, locked or written."""
    journal = Path(journal)
    if not journal.is_file():
        return None, f"{journal.name} is not a file"
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        with quiet_optuna() as optuna:
            # Optuna's backend creates a missing file, never an existing one: it was checked above.
            storage = JournalStorage(JournalFileBackend(str(journal.resolve())))
            names = optuna.get_all_study_names(storage)
            found = name if name in names else names[0] if len(names) == 1 else None
            if found is None:
                return None, f"{journal.name} holds no study named {name} (it holds: {', '.join(names) or 'none'})"
            return optuna.load_study(study_name=found, storage=storage), None
    except Exception as err:  # a damaged or foreign journal: say so, keep whatever shows it
        messages.warn(f"{journal}: cannot read the study ({type(err).__name__}: {err}).")
        return None, f"cannot read {journal.name} ({type(err).__name__})"


def complete_trials(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def searched_params(study) -> list[str]:
    """The parameters the complete trials searched, in the order first suggested."""
    return list(dict.fromkeys(name for trial in complete_trials(study) for name in trial.params))


def target_name(study) -> str:
    """The axis name of the objective: the metric the study remembers (search sets it)."""
    metric = study.user_attrs.get("metric")
    return metric if isinstance(metric, str) and metric else "Objective Value"


def importance_evaluator():
    """fANOVA, seeded: the same study gives the same shares, in best_params.json, PNG and report alike."""
    import optuna

    return optuna.importance.FanovaImportanceEvaluator(seed=0)


def param_importances(study) -> dict:
    """Each searched parameter's share of the objective's variance; {} while the study is too small, or while
    every complete trial has the same value (fANOVA refuses a zero total variance: e.g. the defaults drawn again)."""
    if importances_note(study):
        return {}
    with quiet_optuna() as optuna:
        shares = optuna.importance.get_param_importances(study, evaluator=importance_evaluator())
    return {name: float(share) for name, share in shares.items()}


# -- what a study is too small for ----------------------------------------------------------------
def importances_note(study) -> str | None:
    """Why ``study`` has no parameter importances yet, or None when it has."""
    complete = complete_trials(study)
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCES or not searched_params(study):
        return f"need {MIN_TRIALS_FOR_IMPORTANCES} complete trials; this study has {len(complete)} so far"
    if len({trial.value for trial in complete}) < 2:
        return "every complete trial has the same value: no parameter explains a difference"
    return None


def applies(plot: StudyPlot, study) -> bool:
    """Contours are of pairs of parameters: a study of one parameter has none (no figure, no note)."""
    return plot.key != "contour" or len(searched_params(study)) >= 2


def plot_note(plot: StudyPlot, study) -> str | None:
    """Why ``study`` cannot have ``plot`` yet, or None when it can."""
    from optuna.trial import TrialState

    complete, names = len(complete_trials(study)), searched_params(study)
    if plot.key == "history":
        finished = complete + len(pruned_points(study))
        return None if finished else "no finished trial yet"
    if plot.key == "importances":
        return importances_note(study)
    if plot.key == "contour" and complete < 2:
        return f"need 2 complete trials; this study has {complete} so far"
    if plot.key in ("slice", "parallel") and not (complete and names):
        return "no complete trial yet"
    if plot.key == "intermediate" and not any(
            t.intermediate_values for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL):
        return "no trial has reported an intermediate value yet"
    return None


def plot_notes(study, rendering: str = "png") -> dict[str, str]:
    """key -> note for every plot of ``rendering`` ("png" or "html") that ``study`` is too small for."""
    notes = {}
    for plot in plots_for(rendering, study):
        note = plot_note(plot, study)
        if note is not None:
            notes[plot.key] = note
    return notes


def plots_for(rendering: str, study) -> list[StudyPlot]:
    return [p for p in STUDY_PLOTS if getattr(p, rendering) and applies(p, study)]


# -- the data both renderings add to Optuna's history ----------------------------------------------------
def pruned_points(study) -> list[tuple[int, float]]:
    """(trial number, last reported value) of each pruned trial: Optuna's history shows finished trials only."""
    from optuna.trial import TrialState

    return [(t.number, t.intermediate_values[t.last_step]) for t in
            study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)) if t.last_step is not None]


def history_log_scale(study) -> bool:
    """A log axis when every value is positive and they span more than :data:`LOG_SPAN`."""
    values = [t.value for t in complete_trials(study)] + [v for _, v in pruned_points(study)]
    return bool(values) and min(values) > 0 and max(values) / min(values) > LOG_SPAN


def _keywords(plot: StudyPlot, study) -> dict:
    keywords = {} if plot.key == "intermediate" else {"target_name": target_name(study)}
    if plot.key == "importances":
        keywords["evaluator"] = importance_evaluator()
    return keywords


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


# -- Plotly JSON (the report) ---------------------------------------------------------------------
def plotly_figures(study) -> list[dict]:
    """The report's study plots: [{"title", "figure": Plotly JSON without its template} or {"title", "note"}]."""
    import optuna.visualization as visualization

    shown = []
    for plot in plots_for("html", study):
        note = plot_note(plot, study)
        if note is None:
            try:
                with quiet_optuna():
                    figure = getattr(visualization, plot.function)(study, **_keywords(plot, study))
            except Exception as err:  # e.g. a parameter with one value only: the page says so
                note = _first_line(err)
        if note is None and plot.key == "history":
            add_pruned_to_plotly(figure, study)
        if note is None and not figure.data:
            note = "not enough finished trials for this plot yet"
        if note is not None:
            shown.append({"title": plot.title, "note": note})
            continue
        plotly_json = json.loads(figure.to_json())
        plotly_json["layout"].pop("template", None)  # the page applies one template to every chart
        shown.append({"title": plot.title, "figure": plotly_json})
    return shown


def add_pruned_to_plotly(figure, study) -> None:
    pruned = pruned_points(study)
    if pruned:
        numbers, values = zip(*pruned)
        figure.add_scatter(x=list(numbers), y=list(values), mode="markers", name=PRUNED_NAME,
                           marker={"symbol": "x", "size": 9, "color": "#7f7f7f"})
    if history_log_scale(study):
        figure.update_yaxes(type="log")


# -- PNG files (search) ------------------------------------------------------------------------------
def write_pngs(study, folder: Path) -> dict[str, Path]:
    """``<key>.png`` in ``folder`` for every PNG plot that applies; a plot the study is too small for
    becomes a figure saying what it lacks (the next search redraws it). Returns key -> path."""
    written = {}
    for plot in plots_for("png", study):
        written[plot.key] = write_png(study, plot, Path(folder) / f"{plot.key}.png")
    return written


def write_png(study, plot: StudyPlot, path: Path) -> Path:
    figure = png_figure(study, plot)
    try:
        room_for_panels(figure)
        untangle_ticks(figure)
        with replaced_atomically(path) as tmp:
            figure.savefig(tmp, dpi=100, format="png", bbox_inches="tight")
    finally:
        _close(figure)
    return path


def png_figure(study, plot: StudyPlot):
    """The matplotlib Figure of ``plot``: Optuna's, or a note saying why there is none yet."""
    note = plot_note(plot, study)
    if note is not None:
        return note_figure(plot.title, note)
    from optuna.visualization import matplotlib as backend

    try:
        with quiet_optuna():
            drawn = getattr(backend, plot.function)(study, **_keywords(plot, study))
    except Exception as err:
        return note_figure(plot.title, f"Optuna could not draw it: {_first_line(err)}")
    axes = drawn.flat[0] if hasattr(drawn, "flat") else drawn  # one Axes, or an array of them
    if plot.key == "history":
        add_pruned_to_axes(axes, study)
    return axes.figure


def add_pruned_to_axes(axes, study) -> None:
    pruned = pruned_points(study)
    if pruned:
        axes.scatter(*zip(*pruned), marker="x", c="tab:gray", label=PRUNED_NAME, zorder=2)
        axes.legend()
    if history_log_scale(study):
        axes.set_yscale("log")


def note_figure(title: str, note: str):
    """What a study too small for a plot gets instead: the plot's name and what it lacks."""
    from ..viz.plots import new_figure

    figure = new_figure(6.4, 2.4)
    axes = figure.add_subplot(1, 1, 1)
    axes.axis("off")
    axes.set_title(title)
    axes.text(0.5, 0.5, note, ha="center", va="center", wrap=True, transform=axes.transAxes)
    return figure


def _close(figure) -> None:
    """Optuna draws through pyplot, which keeps every figure until closed."""
    import matplotlib.pyplot as plt

    plt.close(figure)


# -- readable ticks ---------------------------------------------------------------------------------
PANEL_INCHES = (2.4, 2.2)  # the least width and height of one panel of a slice or contour plot


def room_for_panels(figure) -> None:
    """Optuna draws a slice per parameter and a contour per pair of parameters on its default figure
    size, which leaves a study of 4 or 5 parameters unreadable: grow the figure with its grid."""
    rows, columns = 1, 1
    for axes in figure.axes:
        spec = axes.get_subplotspec() if hasattr(axes, "get_subplotspec") else None
        if spec is not None:
            geometry = spec.get_geometry()
            rows, columns = max(rows, geometry[0]), max(columns, geometry[1])
    if rows * columns == 1:
        return
    width, height = figure.get_size_inches()
    figure.set_size_inches(max(width, PANEL_INCHES[0] * columns + 1.5), max(height, PANEL_INCHES[1] * rows + 1.0))


def _crowded_axes(figure) -> list:
    """The x or y axes whose tick labels overlap one another once drawn."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    crowded = []
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            # minor labels too: a log axis spanning less than a decade labels its minor ticks (3x10^2, 4x10^2, ...)
            boxes = [label.get_window_extent(renderer) for label in axis.get_ticklabels(which="both")
                     if label.get_visible() and label.get_text()]
            if any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]):
                crowded.append(axis)
    return crowded


def overlapping_ticks(figure) -> list[str]:
    """Where tick labels overlap: "<panel>: <x|y>" for each such axis."""
    return [f"{axis.axes.get_title() or axis.axes.get_xlabel() or '?'}: {axis.axis_name}"
            for axis in _crowded_axes(figure)]


def untangle_ticks(figure) -> None:
    """Optuna's slice and contour plots put a panel per parameter side by side, where log axes get
    more labels than fit: fewer ticks on a crowded numeric axis, then slanted labels if still crowded.
    Axes of categories keep their own ticks (one per category)."""
    from matplotlib.ticker import AutoLocator, LogLocator, MaxNLocator, NullFormatter

    for axis in _crowded_axes(figure):
        axis.set_minor_formatter(NullFormatter())  # the minor ticks stay, unlabelled
    for axis in _crowded_axes(figure):
        locator = axis.get_major_locator()
        if isinstance(locator, LogLocator):
            axis.set_major_locator(LogLocator(numticks=4))
        elif isinstance(locator, (AutoLocator, MaxNLocator)):
            axis.set_major_locator(MaxNLocator(nbins=4))
    for axis in _crowded_axes(figure):
        if axis.axis_name == "x":
            for label in axis.get_ticklabels():
                label.set_rotation(30)
                label.set_horizontalalignment("right")


# -- several studies side by side (the report) --------------------------------------------------------
# A study "reaches" the best when a trial comes within this share of the best value of all compared studies.
WITHIN = 0.05


def is_maximised(study) -> bool:
    from optuna.study import StudyDirection

    return study.direction == StudyDirection.MAXIMIZE


def within_best(value: float, best: float, maximise: bool) -> bool:
    margin = WITHIN * abs(best)
    return value >= best - margin if maximise else value <= best + margin


def best_so_far(study) -> tuple[list[int], list[float]]:
    """(trial numbers, the best value up to each) over the complete trials, in the order they were numbered."""
    maximise, numbers, values = is_maximised(study), [], []
    for trial in sorted(complete_trials(study), key=lambda t: t.number):
        best = trial.value if not values else (max if maximise else min)(values[-1], trial.value)
        numbers.append(trial.number)
        values.append(best)
    return numbers, values


def baseline_value(study) -> float | None:
    """The value of the trial search enqueued with the experiment's defaults (user attribute ``baseline``)."""
    return next((t.value for t in complete_trials(study) if t.user_attrs.get("baseline") is True), None)


def trials_to_reach(study, target: float) -> int | None:
    """How many trials the study ran (by trial number, pruned and failed ones counted) until a complete one
    came within :data:`WITHIN` of ``target``; None when none did."""
    maximise = is_maximised(study)
    reached = [t.number for t in complete_trials(study) if within_best(t.value, target, maximise)]
    return min(reached) + 1 if reached else None


def plot_text(text: str) -> str:
    """Plotly reads a few HTML tags in names: a study's name shows as typed."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def comparison(named: list[tuple[str, object]]) -> dict:
    """Studies of one experiment and metric side by side: ``rows`` (each study's sampler, trials, best value,
    baseline and trials to reach within 5 % of the best of all) and ``figure``: Plotly JSON with one trace per
    study, its best value so far after each trial."""
    import plotly.graph_objects as go

    histories = {name: best_so_far(study) for name, study in named}
    finished = [(name, study) for name, study in named if histories[name][1]]
    maximise = is_maximised(named[0][1])
    best = (max if maximise else min)((histories[name][1][-1] for name, _ in finished), default=None)
    rows = []
    figure = go.Figure()
    for name, study in named:
        numbers, values = histories[name]
        rows.append({"study": name, "sampler": study.user_attrs.get("sampler"), "trials": len(study.trials),
                     "complete": len(numbers), "best_value": values[-1] if values else None,
                     "baseline": baseline_value(study),
                     "to_reach": trials_to_reach(study, best) if best is not None else None})
        if numbers:
            figure.add_scatter(x=numbers, y=values, mode="lines+markers", name=plot_text(name), line={"shape": "hv"},
                               hovertemplate="trial %{x}<br>best so far %{y:.4g}<extra>" + plot_text(name) + "</extra>")
    everything = [v for name, _ in finished for v in histories[name][1]]
    log = bool(everything) and min(everything) > 0 and max(everything) / min(everything) > LOG_SPAN
    figure.update_layout(xaxis_title="trial", yaxis_title=plot_text(target_name(named[0][1])) + " (best so far)",
                         yaxis_type="log" if log else "linear", legend={"orientation": "h", "y": -0.2},
                         margin={"t": 20})
    plotly_json = json.loads(figure.to_json())
    plotly_json["layout"].pop("template", None)
    return {"best": best, "direction": "maximize" if maximise else "minimize", "rows": rows, "figure": plotly_json}

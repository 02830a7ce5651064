"""The runs and search studies below a folder, as the readers (synthesize, report) see them.

Everything is read through the run record (:mod:`torchclassics.rundir`): a run is a folder holding a
params file that names an experiment, and its files are read by
:class:`~torchclassics.rundir.reader.RunFolder`, never through a symbolic link out of it. Readers
never write into a run.

One bad run never stops or fools a reader:

* a run whose files cannot be read, or whose values cannot be shown (an integer too large for any
  number type, text that is not Unicode), is skipped: it is in :attr:`Found.skipped` with the reason,
  and a warning says so;
* a run that reads but contradicts itself (its summary names another experiment than its params,
  values of the wrong type, an unreadable trial marker or metrics file) is shown with its ``problems``;
* a run is named by its folder, never by what its summary says (copies and renamed runs keep
  their own names): its path relative to the root, less the experiment's folder when it sits in one
  (``runs/regression/tiny`` is ``tiny`` in the regression table).

A run is a dict (the report and the tables read it):
``path, id`` (relative to the root), ``run`` (its name), ``experiment, finished, status, params,
metrics, best, objective`` (an :class:`~torchclassics.rundir.metrics.Objective` or None),
``wall_s, train_s, device, seed, study, trial, history, figures, summary, problems``.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..core import messages
from ..core.errors import UserError
from ..core.files import is_inside
from ..core.text import printable
from ..rundir import layout
from ..rundir.metrics import row_metrics
from ..rundir.reader import RunFolder, image_files, links_out
from ..rundir.records import Summary, renamed_legacy_loss

STATUSES = ("finished", "pruned", "failed", "unfinished")
# A record that cannot be read: our UserError (damaged, a link out, not a regular file, too large, ...),
# ValueError (an integer of more than 4,300 digits, which Python's JSON refuses to convert), OSError.
READ_ERRORS = (UserError, ValueError, OSError)


@dataclass(frozen=True)
class Skipped:
    """A run left out of the tables, and why."""

    path: str     # relative to the root
    reason: str


@dataclass
class Found:
    root: Path
    runs: list[dict] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def flagged(self) -> list[dict]:
        return [run for run in self.runs if run["problems"]]


class Unshowable(Exception):
    """A run that was read but holds a value no table or page can show."""


def natural_key(text: str) -> list:
    """``trial-2`` before ``trial-10``: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def existing_root(root: str | Path | None) -> Path:
    path = layout.runs_root() if root is None else Path(root)
    if not path.exists():
        raise UserError.for_option("root", str(path), "does not exist; give the folder your runs are in "
                                   f"(default: runs/ or ${layout.RUNS_VARIABLE}).")
    if not path.is_dir():
        raise UserError.for_option("root", str(path), "is a file, not a folder of runs; give the folder that holds "
                                   "the run directories.")
    return path


def relative(path: Path, root: Path) -> str:
    """A run's name: its folder relative to the root, control characters escaped (a name that is not
    UTF-8 stays as it is: such a run is skipped, see :func:`unshowable`)."""
    rel = path.relative_to(root).as_posix()
    name = rel if rel != "." else path.name
    try:
        os.fsencode(name).decode("utf-8")
    except UnicodeError:
        return name
    return printable(name)


# -- values a reader can show -------------------------------------------------------------------------
def unshowable(value, where: str = "") -> str | None:
    """Why ``value`` cannot be shown (written as UTF-8 text, JSON, or a number), or None when it can.
    ``where``: the value's place (``metrics.test_mse``), for the reason."""
    named = f"{where} " if where else ""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{named}holds text that is not valid Unicode"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
        return f"{named}is an integer of {len(str(abs(value)))} digits, too large to show"
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            why = unshowable(key, f"a key in {where}" if where else "a key") or unshowable(item, inner)
            if why:
                return why
    elif isinstance(value, list):
        for index, item in enumerate(value):
            why = unshowable(item, f"{where}[{index}]")
            if why:
                return why
    return None


def check_showable(**values) -> None:
    """An Unshowable naming the first value (by its file and place) that cannot be shown."""
    for name, value in values.items():
        why = unshowable(value)
        if why:
            raise Unshowable(f"{name}: {why}")


# -- one run ----------------------------------------------------------------------------------------
def run_status(summary: Summary | None, marker) -> str:
    """finished, or why not: a search trial says (pruned, failed); any other run is unfinished."""
    if summary is not None:
        return "finished"
    return marker.state if marker is not None and marker.state in ("pruned", "failed") else "unfinished"


def last_logged_metrics(history: list[dict]) -> dict:
    """An unfinished run's latest numbers: the last logged row of each model (tag)."""
    metrics: dict = {}
    for row in history:
        prefix = f"{row['tag']}_" if row.get("tag") else ""
        metrics.update({prefix + k: v for k, v in row_metrics(row).items()})
    return metrics


def read_record(folder: RunFolder, name: str) -> dict:
    """A JSON record of the run; a UserError naming the file when it cannot be read (Python's JSON raises a
    bare ValueError, naming nothing, for an integer of more than 4,300 digits)."""
    try:
        return folder.read_object(name)
    except UserError:
        raise
    except (ValueError, OSError) as err:
        raise UserError(f"{folder.file(name)}: {err}") from None


def read_summary(folder: RunFolder) -> tuple[Summary | None, dict]:
    """The typed summary, and the object it was read from (checked whole: a reader shows all of it)."""
    if not os.path.lexists(folder.file(layout.SUMMARY)):
        return None, {}
    raw = read_record(folder, layout.SUMMARY)
    return Summary.from_json(raw), raw


def read_trial(folder: RunFolder, problems: list[str]):
    try:
        return folder.trial()
    except READ_ERRORS as err:
        problems.append(in_run(err, folder.path, layout.TRIAL))
        return None


def read_history(folder: RunFolder, problems: list[str]) -> list[dict]:
    """The rows of its metrics file. A torn line (a run killed mid-write) costs that line, with a warning."""
    try:
        rows, bad = folder.rows()
    except READ_ERRORS as err:
        problems.append(in_run(err, folder.path, layout.METRICS))
        return []
    if bad:
        messages.warn(f"{folder.file(layout.METRICS)}: skipped {bad} unreadable line(s).")
    return rows


def run_figures(folder: RunFolder) -> list[Path]:
    """The run's figures: image files inside it (no hidden ones: a killed write's temporary file is hidden)."""
    figures = folder.path / layout.FIGURES
    for path in links_out(figures, folder.path):
        messages.warn(f"{path} is a symbolic link out of {folder.path} (to {path.resolve()}); skipped it.")
    return folder.figures()


def experiment_of(params: dict) -> str:
    name = params["experiment"]
    if not isinstance(name, str) or not name.strip():
        raise Unshowable(f"{layout.PARAMS} names no experiment (its experiment is {name!r})")
    return name


def read_run(path: Path, root: Path, figures: bool = True) -> dict | None:
    """Everything a reader shows of one run directory; None when the folder is not a run (a params.json
    without an experiment: a project's defaults). A UserError, ValueError, OSError or Unshowable when it is
    a run that cannot be read or shown. ``figures``: list its figures (a table needs none: thousands of runs
    read in half the time)."""
    folder = RunFolder(path)
    params = read_record(folder, layout.PARAMS)
    if "experiment" not in params:
        return None
    experiment = experiment_of(params)
    summary, raw_summary = read_summary(folder)
    problems = [f"{layout.SUMMARY}: {problem}" for problem in (summary.problems if summary else [])]
    if summary is not None and summary.experiment and summary.experiment != experiment:
        problems.append(f"{layout.SUMMARY} names the experiment {summary.experiment!r}, {layout.PARAMS} "
                        f"{experiment!r}: listed under {experiment}")
    marker = read_trial(folder, problems)
    history = read_history(folder, problems)
    if summary is not None:
        history = renamed_legacy_loss(history, summary.metrics)
    check_showable(**{layout.PARAMS: params, layout.SUMMARY: raw_summary, layout.METRICS: history,
                      "the folder's name": relative(path, root)})
    last_train_s = history[-1].get("train_s") if history else None
    return {
        "path": path,
        "id": relative(path, root),
        "run": relative(path, root),  # named in name_runs, once every run is known
        "experiment": experiment,
        "finished": summary is not None,
        "status": run_status(summary, marker),
        "params": {k: v for k, v in params.items() if k != "experiment"},
        "metrics": summary.metrics if summary is not None else last_logged_metrics(history),
        "best": summary.best if summary is not None else {},
        "objective": summary.objective if summary is not None else None,
        "wall_s": summary.wall_s if summary is not None else None,
        "train_s": summary.train_s if summary is not None and summary.train_s is not None else last_train_s,
        "device": summary.device if summary is not None else None,
        "seed": summary.seed if summary is not None and summary.seed is not None else params.get("seed"),
        "study": (summary.study if summary is not None else None) or (marker.study if marker is not None else None),
        "trial": _first_set(summary.trial if summary is not None else None, marker.trial if marker else None),
        "history": history,
        "figures": run_figures(folder) if figures else [],
        "summary": summary,
        "problems": problems,
    }


def _first_set(*values):
    return next((value for value in values if value is not None), None)


def in_run(err: BaseException, run: Path, name: str | None = None) -> str:
    """The error's message, its paths said relative to the run (the run's own path goes before it once):
    ``<the summary's name> is not valid JSON: ...``. ``name``: the file it was about, when the message does not say."""
    text = str(err).rstrip(".")
    if name is not None and str(run / name) not in text:
        text = f"{name}: {text}"
    return printable(text.replace(f"{run}/", "").replace(str(run), "the run"))


# -- every run below a folder -------------------------------------------------------------------------
def folders_holding(root: Path, names: tuple[str, ...]) -> list[Path]:
    """Folders below ``root`` (itself included) holding one of ``names``, sorted. Hidden folders are left out,
    linked folders are not followed, and a run's own folders (checkpoints, figures, ...) are not searched."""
    found = []
    for parent, folders, files in os.walk(root):
        is_run = layout.PARAMS in files
        folders[:] = sorted(f for f in folders if not f.startswith(".") and not (is_run and f in layout.RUN_FOLDERS))
        if any(name in files for name in names):
            found.append(Path(parent))
    return found


def name_runs(runs: list[dict]) -> None:
    """Each run's name in its experiment's table: its folder, less the experiment's folder it sits in;
    the whole relative path where two runs of one experiment would get the same name."""
    def short(run: dict) -> str:
        first, _, rest = run["id"].partition("/")
        return rest if rest and first == run["experiment"] else run["id"]

    seen: dict[tuple[str, str], int] = {}
    for run in runs:
        key = (run["experiment"], short(run))
        seen[key] = seen.get(key, 0) + 1
    for run in runs:
        run["run"] = short(run) if seen[(run["experiment"], short(run))] == 1 else run["id"]


def read_runs(root: str | Path | None, figures: bool = True) -> Found:
    """Every run below ``root``, by experiment, then name in natural order; the runs left out, with why.
    ``figures``: list each run's figures (see :func:`read_run`)."""
    root = existing_root(root)
    found = Found(root)
    for path in folders_holding(root, (layout.PARAMS,)):
        try:
            run = read_run(path, root, figures)
        except (*READ_ERRORS, Unshowable) as err:
            found.skipped.append(Skipped(printable(relative(path, root)), in_run(err, path)))
            messages.warn(f"skipped {printable(str(path))}: {in_run(err, path)}.")
            continue
        if run is not None:
            found.runs.append(run)
    name_runs(found.runs)
    for run in found.runs:
        for problem in run["problems"]:
            messages.warn(f"{printable(str(run['path']))}: {problem}.")
    found.runs.sort(key=lambda r: (r["experiment"], natural_key(r["run"]), natural_key(r["id"])))
    return found


def collect_runs(root: str | Path | None) -> list[dict]:
    """Every readable run below ``root`` (see :func:`read_runs`); a UserError when there is none."""
    found = read_runs(root)
    check_found(found)
    return found.runs


def check_found(found: Found) -> None:
    if found.runs:
        return
    skipped = f" ({len(found.skipped)} could not be read: see the warnings above)" if found.skipped else ""
    raise UserError.for_option("root", str(found.root), f"no run directories below it{skipped}: none holds a readable "
                               f"{layout.PARAMS} with an 'experiment'; make one with `torchclassics run <experiment>`.")


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


# -- search studies -----------------------------------------------------------------------------------
def study_facts(folder: Path) -> dict:
    """best_params.json of a study folder ({} with a warning when it cannot be read or shown). A study folder
    is read like a run's: through RunFolder, never through a link out of it."""
    if not os.path.lexists(folder / layout.BEST_PARAMS):
        return {}
    try:
        facts = RunFolder(folder).read_object(layout.BEST_PARAMS)
        check_showable(**{layout.BEST_PARAMS: facts})
    except (*READ_ERRORS, Unshowable) as err:
        messages.warn(f"{printable(str(folder))}: {in_run(err, folder, layout.BEST_PARAMS)}; not shown.")
        return {}
    return facts


def study_journal(folder: Path) -> Path | None:
    journal = folder / layout.JOURNAL
    if not journal.is_file():
        return None
    if not is_inside(journal, folder):
        messages.warn(f"{journal} is a symbolic link out of {folder} (to {journal.resolve()}); skipped it.")
        return None
    return journal


def collect_studies(root: str | Path | None) -> list[dict]:
    """Search studies below ``root``: folders holding a best_params.json or an Optuna journal.log.
    Each: best_params.json's facts, ``name``, ``path``, ``journal`` (None when absent) and ``figures``."""
    root = existing_root(root)
    studies = []
    for folder in sorted(folders_holding(root, (layout.BEST_PARAMS, layout.JOURNAL)),
                         key=lambda p: natural_key(p.as_posix())):
        facts = study_facts(folder)
        for path in links_out(folder, folder):
            messages.warn(f"{path} is a symbolic link out of {folder} (to {path.resolve()}); skipped it.")
        studies.append({**facts, "name": printable(str(facts.get("study") or folder.name)), "path": folder,
                        "journal": study_journal(folder), "figures": image_files(folder, folder)})
    return studies

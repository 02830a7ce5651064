"""One table per experiment of the runs below a folder (the CS230 ``synthesize_results.py``, for run directories).

    torchclassics synthesize runs/ --sort test_accuracy --format csv --experiment classification

The tables (see :mod:`.table`) go to stdout in the format asked for, and in Markdown to
``results.md`` in the folder given, the only file written: it replaces an earlier results.md of
synthesize, never a file of the user's (``force`` to replace one). Runs that cannot be read or
shown are listed under the tables with the reason, and runs that contradict themselves flagged.
"""
from __future__ import annotations

from pathlib import Path

from ..core import messages
from ..core.errors import UserError
from ..rundir import layout
from . import output
from .runs import check_found, existing_root, read_runs
from .table import (
    check_sort,
    filtered,
    markdown_problems,
    markdown_section,
    only_experiment,
    parsed_filter,
    tables,
    to_csv,
    to_json,
)

FORMATS = ("markdown", "csv", "json")


def synthesize(root: str | Path | None = None, fmt: str = "markdown", sort: str | None = None,
               experiment: str | None = None, force: bool = False, top: int | None = None,
               where: list[str] | tuple[str, ...] = ()) -> str:
    """One table per experiment below ``root`` as ``fmt`` (CSV: one experiment, so one header); also
    writes ``root/results.md`` with the same tables in Markdown. ``force`` replaces a results.md that
    synthesize did not write. ``top``: only the best ``top`` runs of each experiment (by ``sort``, else by
    its objective). ``where``: only the runs whose parameters match each ``KEY=VALUE`` (``lr=0.01``)."""
    messages.console()
    if fmt not in FORMATS:
        raise UserError.for_option("fmt", fmt, f"choose one of {', '.join(FORMATS)}.")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise UserError.for_option("top", str(top), "is not a number of runs; give a whole number, 1 or more.")
    for text in where:
        parsed_filter(text)  # a malformed filter is said before the runs are read
    root = existing_root(root)
    results = root / layout.RESULTS
    output.check_target(results, output.SYNTHESIZE, force)  # before the work, which may be long
    found = read_runs(root, figures=False)
    check_found(found)
    runs = filtered(only_experiment(found.runs, experiment, root), list(where))
    if sort:
        check_sort(runs, sort)
    chosen = tables(runs, sort, top)
    if fmt == "csv" and len(chosen) > 1:
        raise UserError.for_option("fmt", fmt, f"a CSV holds one table, and {root} has runs of {len(chosen)} "
                                   f"experiments ({', '.join(chosen)}); choose one with experiment=NAME, or use "
                                   "fmt='json'.")
    markdown = "\n\n".join([*(markdown_section(name, *table) for name, table in chosen.items()),
                            *filter(None, [markdown_problems(found, runs)])])
    try:
        output.write(results, output.SYNTHESIZE, markdown + "\n")
    except OSError as err:  # a read-only folder of runs still gets its tables printed
        messages.warn(f"could not write {results}: {err.strerror or err}.")
    if fmt == "csv":
        (_, columns, rows), = chosen.values()
        return to_csv(columns, rows)
    if fmt == "json":
        return to_json(chosen)
    return markdown

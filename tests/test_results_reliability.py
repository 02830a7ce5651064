"""synthesize and report against bad runs and bad targets (issue 22, items 3 and 7).

One bad run never stops or fools a reader: a run that cannot be read or shown is skipped and listed
with the reason, a run that contradicts itself is flagged, rows are named by their folder, and a
killed write's temporary figure is never shown. Nothing a user owns is overwritten: results.md and
the report replace only their own earlier output (``force`` for anything else), never a run's record;
CSV cells a spreadsheet would run as formulas are escaped.

The runs are copies of the regression run of release 0.1.0 (tests/fixtures), changed through the run
record (rundir) and the house's JSON writer.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from torchclassics.cli import main
from torchclassics.core import files
from torchclassics.core.errors import UserError
from torchclassics.results.output import body_of, is_own
from torchclassics.results.report import write_report
from torchclassics.results.runs import read_runs
from torchclassics.results.synthesize import synthesize
from torchclassics.rundir import layout
from torchclassics.rundir.reader import RunFolder

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1.0" / "regression"


def copy_run(root: Path, name: str, experiment: str = "regression") -> Path:
    """The release's regression run, copied to ``root/<experiment>/<name>`` (its summary still names the run
    'regression')."""
    path = root / experiment / name
    shutil.copytree(FIXTURE, path, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    return path


def change_summary(run: Path, **changes) -> None:
    """Rewrite summary.json with ``changes`` at its top level (``metrics`` merged into its metrics)."""
    data = RunFolder(run).read_object(layout.SUMMARY)
    data["metrics"] = {**data["metrics"], **changes.pop("metrics", {})}
    files.write_json(run / layout.SUMMARY, {**data, **changes})


def change_params(run: Path, **changes) -> None:
    files.write_json(run / layout.PARAMS, {**RunFolder(run).params(), **changes})


def page_names(html: str) -> list[str]:
    return re.findall(r'aria-label="tick ([^"]*)"', html)


def page_section(html: str, heading: str) -> str:
    return html.split(f">{heading}</h2>")[1].split("</ul>")[0]


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


# -- one bad run never stops or fools a reader -------------------------------------------------------------
def test_a_400_digit_integer_in_a_summary_skips_that_run_and_the_page_is_written(tmp_path, capsys):
    copy_run(tmp_path, "good")
    change_summary(copy_run(tmp_path, "huge"), metrics={"test_mse": 10**400})
    page = write_report(tmp_path)
    html = page.read_text()
    assert page_names(html) == ["good"]
    skipped = page_section(html, "Skipped runs")
    assert "regression/huge" in skipped and "metrics.test_mse is an integer of 401 digits" in skipped
    text = synthesize(tmp_path)
    assert [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")][1:] == ["good"]
    assert "- regression/huge: summary.json: metrics.test_mse is an integer of 401 digits, too large to show" in text
    assert "skipped" in capsys.readouterr().err


def test_an_integer_too_long_for_pythons_json_skips_that_run_naming_the_file(tmp_path):
    copy_run(tmp_path, "good")
    run = copy_run(tmp_path, "long")
    text = (run / layout.PARAMS).read_text()  # Python's own JSON writes no such integer: made as text
    files.write_text(run / layout.PARAMS, text.replace('"hidden": 10', '"hidden": ' + "7" * 5000, 1))
    assert "- regression/long: params.json holds a number too long to read (Exceeds the limit (4300 digits)" \
        in synthesize(tmp_path)
    assert page_names(write_report(tmp_path).read_text()) == ["good"]


def test_a_folder_name_that_is_not_unicode_skips_that_run(tmp_path):
    copy_run(tmp_path, "good")
    os.rename(copy_run(tmp_path, "bad"), os.fsencode(tmp_path / "regression") + b"/bad\xff")
    text = synthesize(tmp_path)
    assert "- regression/bad\\xff: the folder's name: holds text that is not valid Unicode" in text
    assert page_names(write_report(tmp_path).read_text()) == ["good"]


def test_wrong_types_are_flagged_and_non_finite_numbers_stay_strict_json(tmp_path):
    change_summary(copy_run(tmp_path, "odd"), seed="abc", best="x", metrics={"test_mse": float("nan")})
    copy_run(tmp_path, "fine")
    rows = json.loads(synthesize(tmp_path, fmt="json"), parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert {row["run"]: row["test_mse"] for row in rows["regression"]} == {"fine": pytest.approx(0.0957573),
                                                                           "odd": None}
    text = synthesize(tmp_path)
    assert "**Flagged runs**" in text and "seed is str, not int" in text and "best is str, not dict" in text
    html = write_report(tmp_path).read_text()
    assert "seed is str, not int" in page_section(html, "Flagged runs") and page_names(html) == ["fine", "odd"]


def test_copied_and_renamed_runs_are_named_by_their_folders(tmp_path):
    for name in ("first", "second", "third"):
        copy_run(tmp_path, name)  # each summary.json still says run "regression"
    names = [row["run"] for row in json.loads(synthesize(tmp_path, fmt="json"))["regression"]]
    assert names == ["first", "second", "third"]
    (tmp_path / "regression" / "second").rename(tmp_path / "regression" / "renamed")
    assert [row["run"] for row in json.loads(synthesize(tmp_path, fmt="json"))["regression"]] == [
        "first", "renamed", "third"]
    assert page_names(write_report(tmp_path).read_text()) == ["first", "renamed", "third"]


def test_runs_outside_their_experiments_folder_keep_distinct_names(tmp_path):
    copy_run(tmp_path, "tiny")
    shutil.copytree(FIXTURE, tmp_path / "tiny", ignore=shutil.ignore_patterns("*.pt"))  # root/tiny, also regression
    names = {run["run"]: run["id"] for run in read_runs(tmp_path).runs}
    assert names == {"regression/tiny": "regression/tiny", "tiny": "tiny"}


def test_a_summary_naming_another_experiment_is_flagged_under_its_params_experiment(tmp_path, capsys):
    change_summary(copy_run(tmp_path, "moved"), experiment="classification")
    copy_run(tmp_path, "plain")
    tables = json.loads(synthesize(tmp_path, fmt="json"))
    assert list(tables) == ["regression"] and [r["run"] for r in tables["regression"]] == ["moved", "plain"]
    text = synthesize(tmp_path)
    assert ("- regression/moved (regression): summary.json names the experiment 'classification', params.json "
            "'regression': listed under regression") in text
    assert "names the experiment 'classification'" in capsys.readouterr().err
    html = write_report(tmp_path).read_text()
    assert "names the experiment &#39;classification&#39;" in page_section(html, "Flagged runs")
    assert 'data-experiment="classification"' not in html


def test_a_killed_writes_temporary_figure_is_never_shown(tmp_path):
    run = copy_run(tmp_path, "drawn")
    (run / layout.FIGURES).mkdir()
    Image.new("RGB", (8, 8), "red").save(run / layout.FIGURES / "loss.png")
    shutil.copy(run / layout.FIGURES / "loss.png", run / layout.FIGURES / ".torchclassics.loss.x.tmp.png")
    html = write_report(tmp_path).read_text()
    assert re.findall(r'<img src="[^"]+" alt="([^"]+)"', html) == ["loss.png"]
    assert ".torchclassics" not in html


# -- nothing a user owns is overwritten -------------------------------------------------------------------------
def test_report_o_refuses_a_users_file_and_replaces_it_with_force(tmp_path, capsys):
    copy_run(tmp_path / "runs", "one")
    thesis = tmp_path / "thesis.tex"
    thesis.write_text("\\chapter{Results}\n")
    before = snapshot(thesis)
    assert main(["report", str(tmp_path / "runs"), "-o", str(thesis)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "thesis.tex" in err and "force" in err and "Traceback" not in err
    assert snapshot(thesis) == before
    assert main(["report", str(tmp_path / "runs"), "-o", str(thesis), "--force"]) == 0
    assert is_own(thesis, "report") and "<title>torchclassics report" in thesis.read_text()
    assert main(["report", str(tmp_path / "runs"), "-o", str(thesis)]) == 0  # its own output: replaced quietly


def test_an_edited_report_is_the_users_and_is_refused(tmp_path):
    copy_run(tmp_path, "one")
    page = write_report(tmp_path)
    with open(page, "a") as handle:
        handle.write("<!-- my notes -->\n")
    before = snapshot(page)
    with pytest.raises(UserError, match=r"report.html exists and is not a report that torchclassics wrote.*force=True"):
        write_report(tmp_path)
    assert snapshot(page) == before


@pytest.mark.parametrize("target", ["regression/one/params.json", "regression/one/summary.json",
                                    "regression/one/figures/page.html", "linked/params.json", "studies/s/journal.log"])
def test_report_o_never_writes_into_a_runs_record_even_with_force(tmp_path, capsys, target):
    run = copy_run(tmp_path, "one")
    os.symlink(run, tmp_path / "linked")  # a link to the run's folder leads into its record too
    journal = files.write_text(tmp_path / "studies" / "s" / layout.JOURNAL, "{}\n")
    record = {path.name: snapshot(path) for path in [*run.iterdir(), journal] if path.is_file()}
    assert main(["report", str(tmp_path), "-o", str(tmp_path / target), "--force"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "never writes into a run's record" in err and "force" in err
    assert {path.name: snapshot(path) for path in [*run.iterdir(), journal] if path.is_file()} == record
    assert not (run / "figures").exists()


def test_a_users_results_md_and_report_html_in_the_root_are_refused_and_unchanged(tmp_path, capsys):
    copy_run(tmp_path, "one")
    for name in (layout.RESULTS, layout.REPORT):
        (tmp_path / name).write_text("my own notes\n")
    results, report = snapshot(tmp_path / layout.RESULTS), snapshot(tmp_path / layout.REPORT)
    with pytest.raises(UserError, match=r"results.md exists and is not a results.md that torchclassics synthesize wrote"
                                        r".*force=True"):
        synthesize(tmp_path)
    with pytest.raises(UserError, match=r"report.html exists and is not a report that torchclassics wrote.*force=True"):
        write_report(tmp_path)
    assert main(["synthesize", str(tmp_path)]) == 2 and "force" in capsys.readouterr().err
    assert (snapshot(tmp_path / layout.RESULTS), snapshot(tmp_path / layout.REPORT)) == (results, report)
    text = synthesize(tmp_path, force=True)
    assert body_of((tmp_path / layout.RESULTS).read_text()) == text + "\n"
    synthesize(tmp_path)  # now its own: replaced without force
    (tmp_path / layout.RESULTS).write_text((tmp_path / layout.RESULTS).read_text() + "\nmy note\n")
    with pytest.raises(UserError, match="results.md exists"):  # edited since: the user's now
        synthesize(tmp_path)
    assert main(["report", str(tmp_path), "--force"]) == 0 and is_own(tmp_path / layout.REPORT, "report")


def test_csv_escapes_cells_a_spreadsheet_would_run_as_formulas_but_not_numbers(tmp_path):
    formula = '=HYPERLINK("http:evil.example","click")'
    change_params(copy_run(tmp_path, formula), note=formula, lr=-0.5, tag="@SUM(A1)")
    change_params(copy_run(tmp_path, "plain"), note="-2+3", lr=0.2, tag="\tTAB")
    change_summary(tmp_path / "regression" / "plain", metrics={"test_mse": -1.25})
    rows = {row["run"]: row for row in csv.DictReader(io.StringIO(synthesize(tmp_path, fmt="csv")))}
    assert set(rows) == {"'" + formula, "plain"}
    evil = rows["'" + formula]
    assert evil["note"] == "'" + formula and evil["tag"] == "'@SUM(A1)" and evil["lr"] == "-0.5"
    assert rows["plain"]["note"] == "'-2+3" and rows["plain"]["tag"] == "'\tTAB"
    assert rows["plain"]["test_mse"] == "-1.25"
    assert json.loads(synthesize(tmp_path, fmt="json"))["regression"][0]["run"] == formula  # JSON keeps text as it is

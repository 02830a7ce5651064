"""Runs written by the release before the run record's format number (tests/fixtures/release-0.1.0,
format 0) still read: their figures are drawn again, their checkpoints evaluate and resume, their
summaries, trials and studies fill the tables."""
import json
import shutil
from pathlib import Path

import pytest

from torchclassics import api, run
from torchclassics.engine import state
from torchclassics.results.synthesize import synthesize
from torchclassics.rundir.reader import RunFolder

RELEASE = Path(__file__).parent / "fixtures" / "release-0.1.0"
RUNS = sorted(path.name for path in RELEASE.iterdir() if (path / "params.json").is_file())


@pytest.fixture
def old(tmp_path):
    """A copy of the fixture runs (nothing writes into the fixtures themselves)."""
    shutil.copytree(RELEASE, tmp_path / "release")
    return tmp_path / "release"


def test_the_fixtures_are_of_format_0():
    assert len(RUNS) >= 12
    for name in RUNS:
        folder = RunFolder(RELEASE / name)
        assert folder.summary().format == 0 and "format" not in json.loads((folder.path / "summary.json").read_text())
        last = next((folder.path / "checkpoints").rglob("last.pt"))
        assert state.load_training_state(last).format == 0


@pytest.mark.integration
@pytest.mark.parametrize("name", RUNS)
def test_a_run_of_the_previous_release_draws_its_figures_again(old, name):
    drawn = api.figures(old / name)
    assert drawn and all(path.stat().st_size > 0 for path in drawn)


def test_a_run_of_the_previous_release_evaluates_and_predicts(old):
    assert api.evaluate(old / "regression")["test_mse"] == pytest.approx(
        state.load_best(old / "regression" / "checkpoints" / "best.pt").best["value"], rel=1e-5)
    assert api.evaluate(old / "optimizers")["test_mse"] > 0  # the winner's best.pt, found from its rows
    assert api.predict(old / "char_rnn_names", texts=["Dostoevsky"])[0]["label"]


def test_a_run_of_the_previous_release_resumes_and_records_its_threads(old):
    before = RunFolder(old / "regression").rows()[0]
    resumed = run("regression", out=old / "regression", resume=True, figures=False, quiet=True, epochs=3)
    rows = RunFolder(old / "regression").rows()[0]
    assert rows[:len(before)] == before and len(rows) == 3
    assert resumed.summary["format"] == 1 and resumed.summary["threads"] >= 1
    assert json.loads((old / "regression" / "params.json").read_text())["threads"] == resumed.summary["threads"]


def test_a_study_and_trials_of_the_previous_release_fill_the_tables(old):
    table = synthesize(old / "search", fmt="json")
    rows = json.loads(table)["regression"]
    assert [row["run"] for row in rows] == [f"regression-trial-{n}" for n in range(3)]
    assert {row["status"] for row in rows} == {"finished"}
    assert RunFolder(old / "search" / "regression" / "regression-trial-0").trial().format == 0

"""`torchclassics synthesize`: one table of every run below a folder.

The run directories are written here by hand, in the run-directory contract
(params.json, metrics.jsonl, summary.json), plus one real tiny regression run.
``write_run`` and ``make_runs`` are reused by test_report.py.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from torchclassics.cli import main
from torchclassics.errors import UserError
from torchclassics.synthesize import collect_runs, higher_is_better, synthesize


def history_rows(epochs: int, start_loss: float, accuracy: bool = True, tag: str = "") -> list[dict]:
    rows = []
    for epoch in range(1, epochs + 1):
        row = {"epoch": epoch, "step": epoch * 10, "loss": start_loss / epoch, "test_loss": 1.2 * start_loss / epoch,
               "lr": 0.1, "train_s": 0.01 * epoch}
        if accuracy:
            row.update(accuracy=1 - 0.25 * start_loss / epoch, test_accuracy=1 - 0.3 * start_loss / epoch)
        if tag:
            row["tag"] = tag
        rows.append(row)
    return rows


def write_run(path: Path, experiment: str, params: dict, history: list[dict] = (), metrics: dict | None = None,
              best: dict | None = None, wall_s: float = 1.5, extra: dict | None = None) -> Path:
    """A run directory as the engine writes it; ``metrics=None`` leaves it unfinished (no summary.json)."""
    path.mkdir(parents=True)
    (path / "figures").mkdir()
    (path / "params.json").write_text(json.dumps({"experiment": experiment, **params}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in history))
    if metrics is not None:
        summary = {"experiment": experiment, "run": path.name, "params": {"experiment": experiment, **params},
                   "seed": params.get("seed", 0), "device": "cpu", "wall_s": wall_s, "train_s": wall_s / 2,
                   "versions": {"python": "3"}, "metrics": metrics,
                   "best": best or {"metric": "test_loss", "value": metrics.get("test_loss"), "epoch": len(history)},
                   **(extra or {})}
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def final(history: list[dict]) -> dict:
    return {k: v for k, v in history[-1].items() if k not in ("epoch", "step", "lr", "train_s", "tag")}


def make_runs(root: Path) -> dict[str, Path]:
    """Two experiments with different metrics, a killed run, and a run with damaged JSON."""
    base = {"seed": 0, "hidden": 10, "epochs": 3, "optimizer_args": {}}
    slow, fast = history_rows(3, 2.0), history_rows(3, 1.0)
    runs = {
        "slow": write_run(root / "classification" / "slow", "classification", {**base, "lr": 0.01}, slow, final(slow)),
        "fast": write_run(root / "classification" / "fast", "classification", {**base, "lr": 0.5}, fast, final(fast)),
        "killed": write_run(root / "classification" / "killed", "classification", {**base, "lr": 2.0},
                            history_rows(2, 3.0)),
        "autoencoder": write_run(root / "autoencoder" / "ae1", "autoencoder", {"seed": 0, "latent": 3},
                                 history_rows(2, 0.5, accuracy=False), {"loss": 0.3, "test_loss": 0.31, "test_mse": 0.02},
                                 wall_s=4.0),
    }
    broken = root / "classification" / "broken"
    broken.mkdir(parents=True)
    (broken / "params.json").write_text('{"experiment": "classification", "lr": ')  # killed mid-write
    write_run(root / "classification" / "bad_summary", "classification", {**base, "lr": 0.3}, slow, final(slow))
    (root / "classification" / "bad_summary" / "summary.json").write_text("[1, 2")
    with open(runs["killed"] / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 3, "lo')  # a torn last line: that row is dropped, the run kept
    return runs


def markdown_rows(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


@pytest.fixture()
def runs_dir(tmp_path: Path) -> Path:
    make_runs(tmp_path)
    return tmp_path


def test_markdown_table_has_a_row_per_run_and_writes_results_md(runs_dir, capsys):
    text = synthesize(runs_dir)
    rows = markdown_rows(text)
    assert sorted(r["run"] for r in rows) == ["ae1", "fast", "killed", "slow"]
    err = capsys.readouterr().err  # damaged runs are warned about and skipped; nothing crashed
    assert "classification/broken" in err and "classification/bad_summary" in err and "1 unreadable line" in err
    by_run = {r["run"]: r for r in rows}
    assert by_run["killed"]["status"] == "unfinished"
    assert by_run["killed"]["test_accuracy"] == "0.55"  # its last logged epoch
    assert by_run["fast"]["status"] == "finished"
    assert by_run["fast"]["test_accuracy"] == "0.9" and by_run["fast"]["wall_s"] == "1.5"
    assert by_run["ae1"]["test_mse"] == "0.02" and by_run["ae1"]["test_accuracy"] == ""  # union of metrics
    assert (runs_dir / "results.md").read_text().strip() == text


def test_only_parameters_that_differ_become_columns(runs_dir):
    columns = markdown_rows(synthesize(runs_dir))[0].keys()
    assert "lr" in columns                              # differs between classification runs
    assert not {"hidden", "seed", "epochs", "optimizer_args", "latent"} & set(columns)  # the same within an experiment
    assert {"experiment", "run", "best_metric", "best_value", "best_epoch", "wall_s"} <= set(columns)


def test_csv_and_json_hold_the_same_rows(runs_dir):
    csv_rows = list(csv.DictReader(io.StringIO(synthesize(runs_dir, fmt="csv"))))
    json_rows = json.loads(synthesize(runs_dir, fmt="json"))
    assert [r["run"] for r in csv_rows] == [r["run"] for r in json_rows]
    assert len(json_rows) == 4
    fast = next(r for r in json_rows if r["run"] == "fast")
    assert fast["lr"] == 0.5 and fast["test_accuracy"] == pytest.approx(0.9)  # JSON keeps numbers as numbers
    assert float(next(r for r in csv_rows if r["run"] == "fast")["test_loss"]) == pytest.approx(0.4)


def test_sort_puts_the_best_first_and_runs_without_the_metric_last(runs_dir):
    assert higher_is_better("test_accuracy") and not higher_is_better("test_loss") and not higher_is_better("test_mse")
    by_accuracy = [r["run"] for r in json.loads(synthesize(runs_dir, fmt="json", sort="test_accuracy"))]
    assert by_accuracy == ["fast", "slow", "killed", "ae1"]  # descending: 0.9, 0.8, 0.55, none
    by_loss = [r["run"] for r in json.loads(synthesize(runs_dir, fmt="json", sort="test_loss"))]
    assert by_loss == ["ae1", "fast", "slow", "killed"]      # ascending: 0.31, 0.4, 0.8, 1.8
    by_mse = [r["run"] for r in json.loads(synthesize(runs_dir, fmt="json", sort="test_mse"))]
    assert by_mse[0] == "ae1"                                 # the only run with test_mse, then the rest
    assert (runs_dir / "results.md").read_text().index("ae1") < (runs_dir / "results.md").read_text().index("fast")


def test_sort_by_an_unknown_metric_names_the_metrics_there_are(runs_dir):
    with pytest.raises(UserError, match=r"--sort top5.*test_accuracy.*test_loss"):
        synthesize(runs_dir, sort="top5")


def test_missing_or_empty_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        synthesize(tmp_path / "nowhere")
    with pytest.raises(UserError, match="no run directories"):
        synthesize(tmp_path)
    with pytest.raises(UserError, match="--format"):
        synthesize(tmp_path, fmt="xlsx")


def test_default_root_is_the_runs_root(runs_dir, monkeypatch):
    monkeypatch.setenv("TORCHCLASSICS_RUNS", str(runs_dir))
    assert len(collect_runs(None)) == 4


def test_cli_prints_the_table_and_a_bad_sort_exits_2(runs_dir, capsys):
    assert main(["synthesize", str(runs_dir), "--format", "csv", "--sort", "test_loss"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("experiment,run,status")
    assert len(out.strip().splitlines()) == 5
    assert main(["synthesize", str(runs_dir), "--sort", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err


def test_a_real_run_appears_with_its_metrics(tmp_path):
    import torchclassics

    torchclassics.run("regression", out=tmp_path / "regression" / "tiny", epochs=5, figures=False)
    (row,) = json.loads(synthesize(tmp_path, fmt="json"))
    assert row["experiment"] == "regression" and row["run"] == "tiny" and row["status"] == "finished"
    assert row["test_mse"] > 0 and row["best_epoch"] is not None and row["wall_s"] > 0

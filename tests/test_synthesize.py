"""`torchclassics synthesize`: one table per experiment of the runs below a folder.

The run directories are written here by hand, in the run-directory contract
(params.json, metrics.jsonl, summary.json, trial.json), in today's names
(``loss``/``test_loss`` rows) and the new ones (``mse``/``test_mse``, ``val_``,
summary ``objective``), plus one real tiny regression run. ``write_run``,
``history_rows`` and ``make_runs`` are reused by test_report.py.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest

from torchclassics.cli import main
from torchclassics.errors import UserError
from torchclassics.results.output import body_of
from torchclassics.results.runs import collect_runs
from torchclassics.results.synthesize import synthesize
from torchclassics.rundir.metrics import guessed_mode

CONSTANT = {"seed": 0, "hidden": 10, "epochs": 3, "optimizer_args": {}}


def history_rows(epochs: int, start_loss: float, accuracy: bool = True, tag: str = "", loss: str = "loss",
                 held_out: str = "test_") -> list[dict]:
    rows = []
    for epoch in range(1, epochs + 1):
        row = {"epoch": epoch, "step": epoch * 10, loss: start_loss / epoch,
               f"{held_out}{loss}": 1.2 * start_loss / epoch,
               "lr": 0.1, "train_s": 0.01 * epoch}
        if accuracy:
            row.update({"accuracy": 1 - 0.25 * start_loss / epoch, f"{held_out}accuracy": 1 - 0.3 * start_loss / epoch})
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


def classification_run(root: Path, name: str, lr: float, start_loss: float, finished: bool = True,
                       epochs: int = 3) -> Path:
    rows = history_rows(epochs, start_loss)
    goal = {"objective": {"metric": "test_accuracy", "mode": "max"}}
    return write_run(root / "classification" / name, "classification", {**CONSTANT, "lr": lr}, rows,
                     final(rows) if finished else None,
                     {"metric": "test_accuracy", "value": rows[-1]["test_accuracy"], "epoch": epochs}, extra=goal)


def make_runs(root: Path) -> dict[str, Path]:
    """Four experiments in old and new metric names, search trials (one pruned), a killed run,
    and runs with damaged JSON."""
    runs = {name: classification_run(root, name, lr, loss)
            for name, lr, loss in (("slow", 0.01, 2.0), ("fast", 0.5, 1.0), ("lr-trial-2", 0.1, 1.5),
                                   ("lr-trial-10", 0.2, 1.2))}
    runs["killed"] = classification_run(root, "killed", 2.0, 3.0, finished=False, epochs=2)
    runs["lr-trial-3"] = classification_run(root, "lr-trial-3", 3.0, 9.0, finished=False, epochs=1)
    (runs["lr-trial-3"] / "trial.json").write_text(json.dumps({"study": "lr", "trial": 3, "state": "pruned"}))
    with open(runs["killed"] / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 3, "lo')  # a torn last line: that row is dropped, the run kept
    # regression in today's names (rows say loss/test_loss, the summary mse/test_mse) and in the new ones
    old, new = history_rows(3, 0.5, accuracy=False), history_rows(3, 0.4, accuracy=False, loss="mse")
    mse = {"metric": "test_mse", "value": 0.1, "epoch": 3}
    runs["old"] = write_run(root / "regression" / "old", "regression", {"seed": 0, "n_points": 100, "hidden": 10},
                            old, {"mse": old[-1]["loss"], "test_mse": old[-1]["test_loss"]}, mse)
    runs["new"] = write_run(root / "regression" / "new", "regression", {"seed": 0, "n_points": 100, "hidden": 20},
                            new, final(new), mse, extra={"objective": {"metric": "test_mse", "mode": "min"}})
    # a held-out split called val_
    dogs = history_rows(2, 0.7, held_out="val_")
    for size in (64, 128):
        runs[f"dogs{size}"] = write_run(root / "dogs_vs_cats" / f"dogs{size}", "dogs_vs_cats",
                                        {"seed": 0, "image_size": size}, dogs, final(dogs),
                                        {"metric": "val_accuracy", "value": 0.8, "epoch": 2},
                                        extra={"objective": {"metric": "val_accuracy", "mode": "max"}})
    runs["ae1"] = write_run(root / "autoencoder" / "ae1", "autoencoder", {"seed": 0, "latent": 3},
                            history_rows(2, 0.5, accuracy=False, loss="mse"), {"mse": 0.3, "test_mse": 0.02},
                            {"metric": "test_mse", "value": 0.02, "epoch": 2}, wall_s=4.0)
    broken = root / "classification" / "broken"
    broken.mkdir(parents=True)
    (broken / "params.json").write_text('{"experiment": "classification", "lr": ')  # killed mid-write
    classification_run(root, "bad_summary", 0.3, 2.0)
    (root / "classification" / "bad_summary" / "summary.json").write_text("[1, 2")
    return runs


def sections(text: str) -> dict[str, list[str]]:
    """Experiment -> the table lines of its Markdown section."""
    found = {}
    for block in text.split("## ")[1:]:
        name, _, body = block.partition("\n")
        found[name.strip()] = [line for line in body.splitlines() if line.startswith("|")]
    return found


def markdown_rows(lines: list[str]) -> list[dict]:
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


def files_below(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in root.rglob("*") if p.name not in ("results.md", "report.html")}


@pytest.fixture()
def runs_dir(tmp_path: Path) -> Path:
    make_runs(tmp_path)
    return tmp_path


def test_one_table_per_experiment_with_metrics_first_then_only_varying_parameters(runs_dir, capsys):
    text = synthesize(runs_dir)
    tables = sections(text)
    assert list(tables) == ["autoencoder", "classification", "dogs_vs_cats", "regression"]
    header = list(markdown_rows(tables["classification"])[0])
    assert header == ["run", "test_accuracy", "test_loss", "best_test_accuracy", "best_epoch", "train_s", "status",
                      "lr"]
    assert list(markdown_rows(tables["regression"])[0]) == ["run", "test_mse", "best_test_mse", "best_epoch",
                                                            "train_s", "status", "hidden"]
    assert list(markdown_rows(tables["dogs_vs_cats"])[0])[1:3] == ["val_accuracy", "val_loss"]  # val_ is held out
    assert "latent" not in text.split("## autoencoder")[1]  # one run: nothing varies
    assert "n_points" not in text and "seed" not in text and "optimizer_args" not in text
    err = capsys.readouterr().err  # damaged runs are warned about and skipped; nothing crashed
    assert "classification/broken" in err and "classification/bad_summary" in err and "1 unreadable line" in err
    assert body_of((runs_dir / "results.md").read_text()).strip() == text


def test_lines_are_only_as_long_as_their_experiments_columns(runs_dir):
    for name, lines in sections(synthesize(runs_dir)).items():
        widths = [len(cell) for cell in lines[1].strip("|").split("|")]
        assert {len(line) for line in lines} == {sum(widths) + len(widths) + 1}, name  # padded, nothing more
    assert max(len(line) for line in sections(synthesize(runs_dir))["autoencoder"]) < 80


def test_rows_in_natural_order_with_each_status_and_last_logged_metrics(runs_dir):
    text = synthesize(runs_dir)
    rows = markdown_rows(sections(text)["classification"])
    assert [r["run"] for r in rows] == ["fast", "killed", "lr-trial-2", "lr-trial-3", "lr-trial-10", "slow"]
    by_run = {r["run"]: r for r in rows}
    assert by_run["lr-trial-3"]["status"] == "pruned" and by_run["killed"]["status"] == "unfinished"
    assert by_run["killed"]["test_accuracy"] == "0.55"  # its last logged epoch
    assert by_run["fast"]["test_accuracy"] == "0.9" and by_run["fast"]["status"] == "finished"
    assert "6 runs: 4 finished, 1 pruned, 1 unfinished · objective test_accuracy (higher is better)" in text


def test_old_and_new_metric_names_read_alike(runs_dir):
    rows = {r["run"]: r for r in markdown_rows(sections(synthesize(runs_dir))["regression"])}
    assert rows["old"]["test_mse"] != "" and rows["new"]["test_mse"] != ""
    history = {run["run"]: run["history"] for run in collect_runs(runs_dir)}
    assert {"mse", "test_mse"} <= set(history["old"][0]) and "test_loss" not in history["old"][0]
    assert {"mse", "test_mse"} <= set(history["new"][0])
    assert {"loss", "test_loss"} <= set(history["fast"][0])  # a cross-entropy lesson keeps its loss


def test_csv_and_json_have_the_markdown_columns(runs_dir):
    markdown = sections(synthesize(runs_dir))
    tables = json.loads(synthesize(runs_dir, fmt="json"))
    assert list(tables) == list(markdown)
    for name, rows in tables.items():
        assert [list(row) for row in rows] == [list(markdown_rows(markdown[name])[0])] * len(rows)
    fast = next(r for r in tables["classification"] if r["run"] == "fast")
    assert fast["lr"] == 0.5 and fast["test_accuracy"] == pytest.approx(0.9)  # JSON keeps numbers as numbers
    text = synthesize(runs_dir, fmt="csv", experiment="classification")
    csv_rows = list(csv.DictReader(io.StringIO(text)))
    assert list(csv_rows[0]) == list(tables["classification"][0])
    assert [r["run"] for r in csv_rows] == [r["run"] for r in tables["classification"]]
    assert float(next(r for r in csv_rows if r["run"] == "fast")["test_loss"]) == pytest.approx(0.4)
    with pytest.raises(UserError, match=r"fmt='csv': a CSV holds one table.*autoencoder, classification.*experiment="):
        synthesize(runs_dir, fmt="csv")


def test_experiment_option_gives_its_table_alone(runs_dir):
    text = synthesize(runs_dir, experiment="regression")
    assert list(sections(text)) == ["regression"]
    assert list(json.loads(synthesize(runs_dir, fmt="json", experiment="regression"))) == ["regression"]
    with pytest.raises(UserError, match=r"experiment='nope': .*autoencoder, classification, dogs_vs_cats, regression"):
        synthesize(runs_dir, experiment="nope")


def test_sort_puts_the_best_first_in_each_table_and_runs_without_the_metric_last(runs_dir):
    assert [guessed_mode(m) for m in ("test_accuracy", "test_loss", "test_mse")] == ["max", "min", "min"]
    tables = json.loads(synthesize(runs_dir, fmt="json", sort="test_accuracy"))
    # 0.9, 0.88, 0.85, 0.8, 0.55 (last logged), -1.7
    assert [r["run"] for r in tables["classification"]] == ["fast", "lr-trial-10", "lr-trial-2", "slow", "killed",
                                                            "lr-trial-3"]
    assert [r["run"] for r in tables["regression"]] == ["new", "old"]  # no test_accuracy: natural order kept
    by_loss = json.loads(synthesize(runs_dir, fmt="json", sort="test_loss"))["classification"]
    assert [r["run"] for r in by_loss][:2] == ["fast", "lr-trial-10"]  # ascending
    results = (runs_dir / "results.md").read_text()
    assert results.index("| fast ") < results.index("| slow ")


def test_summary_objective_decides_the_direction_over_the_metric_name(tmp_path):
    for name, bleu in (("low", 0.1), ("high", 0.9)):
        write_run(tmp_path / "translate" / name, "translate", {"seed": 0}, [], {"test_bleu": bleu},
                  {"metric": "test_bleu", "value": bleu, "epoch": 1},
                  extra={"objective": {"metric": "test_bleu", "mode": "max"}})
    assert guessed_mode("test_bleu") == "min"  # the name alone would sort it ascending
    assert [r["run"] for r in json.loads(synthesize(tmp_path, fmt="json", sort="test_bleu"))["translate"]] == ["high",
                                                                                                            "low"]


def test_sort_by_an_unknown_metric_names_the_metrics_there_are(runs_dir):
    with pytest.raises(UserError, match=r"sort='top5'.*test_accuracy.*test_loss"):
        synthesize(runs_dir, sort="top5")


def test_symlinks_out_of_a_run_are_not_followed(runs_dir, tmp_path_factory, capsys):
    outside = tmp_path_factory.mktemp("elsewhere")
    (outside / "secret.jsonl").write_text(json.dumps({"epoch": 1, "test_loss": 0.123456789, "secret_key": 42}) + "\n")
    (outside / "summary.json").write_text(json.dumps({"experiment": "autoencoder", "metrics": {"stolen": 7}}))
    ae = runs_dir / "autoencoder" / "ae1"
    (ae / "metrics.jsonl").unlink()
    os.symlink(outside / "secret.jsonl", ae / "metrics.jsonl")
    write_run(runs_dir / "autoencoder" / "ae2", "autoencoder", {"seed": 0, "latent": 3})
    os.symlink(outside / "summary.json", runs_dir / "autoencoder" / "ae2" / "summary.json")
    text = synthesize(runs_dir, fmt="json")
    assert "secret_key" not in text and "stolen" not in text
    assert [r["run"] for r in json.loads(text)["autoencoder"]] == ["ae1"]  # ae2's summary is not its own: skipped
    assert not collect_runs(runs_dir)[0]["history"]
    err = capsys.readouterr().err
    assert re.search(r"ae1: metrics.jsonl is a symbolic link out of the run \(to .*secret.jsonl\)", err)
    assert re.search(r"skipped .*ae2: summary.json is a symbolic link out of the run", err)


def test_readers_write_nothing_into_runs(runs_dir):
    before = files_below(runs_dir)
    synthesize(runs_dir)
    synthesize(runs_dir, fmt="json", sort="test_loss")
    assert files_below(runs_dir) == before
    assert [p.name for p in runs_dir.iterdir() if p.is_file()] == ["results.md"]


def test_missing_or_empty_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        synthesize(tmp_path / "nowhere")
    with pytest.raises(UserError, match="no run directories"):
        synthesize(tmp_path)
    with pytest.raises(UserError, match="fmt='xlsx'"):
        synthesize(tmp_path, fmt="xlsx")


def test_default_root_is_the_runs_root(runs_dir, monkeypatch):
    monkeypatch.setenv("TORCHCLASSICS_RUNS", str(runs_dir))
    assert len(collect_runs(None)) == 11


def test_cli_prints_the_tables_and_a_bad_option_exits_2(runs_dir, capsys):
    assert main(["synthesize", str(runs_dir), "--format", "json", "--sort", "test_loss"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["autoencoder", "classification", "dogs_vs_cats", "regression"]
    for bad in (["--sort", "nope"], ["--format", "csv"]):
        assert main(["synthesize", str(runs_dir), *bad]) == 2
        err = capsys.readouterr().err
        assert bad[1] in err and "Traceback" not in err


def test_a_real_run_appears_with_its_metrics(tmp_path):
    import torchclassics

    torchclassics.run("regression", out=tmp_path / "regression" / "tiny", epochs=5, figures=False)
    (row,) = json.loads(synthesize(tmp_path, fmt="json"))["regression"]
    assert row["run"] == "tiny" and row["status"] == "finished"
    assert row["test_mse"] > 0 and row["best_epoch"] is not None and row["train_s"] > 0
    (run,) = collect_runs(tmp_path)
    assert "test_mse" in run["history"][-1]  # today's rows (test_loss) read under the summary's name


# -- --top, --where and readable numbers ------------------------------------------------------------------------
def test_top_keeps_the_best_runs_of_each_experiment_by_its_objective(runs_dir):
    tables = sections(synthesize(runs_dir, top=2))
    classification = [row["run"] for row in markdown_rows(tables["classification"])]
    assert classification == ["fast", "lr-trial-10"]  # test_accuracy is maximised: the two best
    assert [row["run"] for row in markdown_rows(sections(synthesize(runs_dir, top=1, sort="test_loss"))
                                                ["classification"])] == ["fast"]
    assert len(markdown_rows(tables["regression"])) == 2 and len(markdown_rows(tables["autoencoder"])) == 1


def test_where_keeps_the_runs_whose_parameter_has_that_value(runs_dir):
    tables = sections(synthesize(runs_dir, where=["lr=0.5"]))
    assert list(tables) == ["classification"]
    assert [row["run"] for row in markdown_rows(tables["classification"])] == ["fast"]
    assert list(sections(synthesize(runs_dir, where=["hidden=20"]))) == ["regression"]
    both = sections(synthesize(runs_dir, where=["hidden=10", "lr=1e-2"]))  # numbers compare as numbers
    assert [row["run"] for row in markdown_rows(both["classification"])] == ["slow"]
    with pytest.raises(UserError, match=r"no run has lr = 0.3; its values there are: 0.01, 0.1, 0.2, 0.5, 2, 3"):
        synthesize(runs_dir, where=["lr=0.3"])
    with pytest.raises(UserError, match="no run has the parameter nope; the parameters there are: .*hidden"):
        synthesize(runs_dir, where=["nope=1"])


def test_a_malformed_filter_or_top_is_one_line_and_exit_2(runs_dir, capsys):
    for bad in (["--where", "lr"], ["--where", "=0.1"], ["--where", "lr="], ["--top", "0"]):
        assert main(["synthesize", str(runs_dir), *bad]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith(f"torchclassics: error: {bad[0]} {bad[1]}:"), err
    assert not (runs_dir / "results.md").exists()  # said before any run was read or anything written


def test_floats_show_four_significant_digits_even_inside_structures(tmp_path):
    from torchclassics.results.table import format_cell

    assert format_cell(0.0074123456789) == "0.007412" and format_cell(123456.789) == "1.235e+05"
    assert format_cell({"lr": 0.123456789, "betas": [0.9, 0.99912345]}) == '{"betas":[0.9,0.9991],"lr":0.1235}'
    rows = history_rows(2, 0.123456789, accuracy=False)
    write_run(tmp_path / "regression" / "a", "regression", {"seed": 0, "lr": 0.0123456789}, rows, final(rows))
    write_run(tmp_path / "regression" / "b", "regression", {"seed": 0, "lr": 0.1}, rows, final(rows))
    text = synthesize(tmp_path)
    assert "0.01235" in text and "0.0123456789" not in text and "0.07407" in text

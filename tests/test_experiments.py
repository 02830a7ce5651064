"""Smoke runs of the first five lessons with tiny settings, and their default-parameter targets."""
import json
import subprocess
import sys

import pytest
from PIL import Image

from torchclassics import run
from torchclassics.cli import main

TINY = {
    "regression": ({"epochs": 6, "gif_frames": 3}, ["fit.png", "loss.png", "animation.gif"]),
    "classification": ({"epochs": 6, "gif_frames": 3}, ["decision_regions.png", "loss.png", "animation.gif"]),
    "linear": ({"epochs": 6}, ["fit.png", "loss.png"]),
    "optimizers": ({"epochs": 1, "n_points": 100}, ["loss.png"]),
    "rnn_sincos": ({"epochs": 2, "train_windows": 10, "test_windows": 5, "gif_frames": 2},
                   ["prediction.png", "loss.png", "animation.gif"]),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_run_writes_its_figures(tmp_path, name):
    overrides, figures = TINY[name]
    result = run(name, out=tmp_path / name, **overrides)
    for figure in figures:
        path = result.run_dir / "figures" / figure
        assert path.is_file(), figure
        with Image.open(path) as image:
            assert image.width > 100 and image.height > 100
    if "animation.gif" in figures:
        with Image.open(result.run_dir / "figures" / "animation.gif") as gif:
            assert gif.n_frames >= 2
    assert all(isinstance(v, float) for v in result.metrics.values())


def test_list_shows_every_experiment_with_a_description(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = {line.split()[0] for line in lines}
    assert set(TINY) <= names
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


def test_python_m_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "torchclassics", "list"], capture_output=True, text=True, check=True)
    assert "regression" in proc.stdout


def test_regression_default_fits_the_parabola(tmp_path):
    result = run("regression", out=tmp_path / "r", figures=False)
    assert result.metrics["mse"] < 0.015
    assert result.metrics["test_mse"] < 0.015


def test_classification_default_separates_the_clusters(tmp_path):
    result = run("classification", out=tmp_path / "c", figures=False)
    assert result.metrics["accuracy"] > 0.98
    assert result.metrics["test_accuracy"] > 0.98


@pytest.mark.integration
def test_rnn_sincos_default_beats_predicting_zero_by_far(tmp_path):
    result = run("rnn_sincos", out=tmp_path / "r", figures=False)
    assert result.metrics["test_mse"] < 0.05  # predicting 0 everywhere scores 0.5


def test_linear_both_ways_approach_least_squares(tmp_path):
    result = run("linear", out=tmp_path / "l", figures=False, epochs=200)
    m = result.metrics
    start = run("linear", out=tmp_path / "l0", figures=False, epochs=1).metrics
    assert m["least_squares_mse"] <= m["by_hand_mse"] < start["by_hand_mse"]
    assert m["least_squares_mse"] <= m["mse"] < start["mse"]
    # both fits start from the same weights and take the same steps: the same line
    assert m["by_hand_w"] == pytest.approx(m["linear_w"], abs=1e-5)
    assert m["by_hand_b"] == pytest.approx(m["linear_b"], abs=1e-5)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert {"by_hand_w", "by_hand_b", "linear_w", "linear_b"} <= summary["metrics"].keys()


def test_optimizers_compares_every_named_optimizer(tmp_path):
    result = run("optimizers", out=tmp_path / "o", figures=False, epochs=2, n_points=200,
                 optimizers=["SGD", "Momentum", "Adam", "LBFGS", "Adagrad"])
    for name in ("SGD", "Momentum", "Adam", "LBFGS", "Adagrad"):
        assert f"test_mse_{name}" in result.metrics
        assert (result.run_dir / "checkpoints" / name / "last.pt").is_file()
    summary = json.loads((result.run_dir / "summary.json").read_text())
    # the winner is named once, and the same everywhere: lowest final held-out MSE, its best epoch
    finals = {name: result.metrics[f"test_mse_{name}"] for name in ("SGD", "Momentum", "Adam", "LBFGS", "Adagrad")}
    assert summary["best_optimizer"] == min(finals, key=finals.get) == summary["best"]["optimizer"]
    assert result.metrics["test_mse"] == finals[summary["best_optimizer"]]
    # every net started from the same weights, so they differ by their optimizer alone
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {row["tag"] for row in rows} == {"SGD", "Momentum", "Adam", "LBFGS", "Adagrad"}


def test_evaluate_reproduces_the_final_held_out_metrics(tmp_path, capsys):
    result = run("classification", out=tmp_path / "c", figures=False, epochs=5)
    assert main(["evaluate", str(result.run_dir), "--checkpoint", "last"]) == 0
    out = capsys.readouterr().out
    assert f"{result.metrics['test_accuracy']:.6g}" in out


def test_evaluate_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_evaluate_and_export_of_an_optimizers_run_use_the_best_optimizer(tmp_path, capsys):
    result = run("optimizers", out=tmp_path / "o", figures=False, epochs=2, n_points=200, optimizers=["SGD", "Adam"])
    best = json.loads((result.run_dir / "summary.json").read_text())["best_optimizer"]
    assert main(["evaluate", str(result.run_dir), "--checkpoint", "last"]) == 0
    out = capsys.readouterr().out
    assert f"{result.metrics[f'test_mse_{best}']:.6g}" in out


def test_predict_on_a_run_that_does_not_classify_is_one_line(tmp_path, capsys):
    result = run("regression", out=tmp_path / "r", figures=False, epochs=2)
    (tmp_path / "x.png").write_bytes(b"")  # a file that exists: a missing one is refused before the run is read
    assert main(["predict", str(result.run_dir), str(tmp_path / "x.png")]) == 2
    assert "runs do not classify files or texts" in capsys.readouterr().err

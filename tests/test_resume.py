"""Fault test: a run killed with SIGKILL mid-training and resumed ends exactly where the
uninterrupted run ends (CPU, same seed)."""
import json

import pytest

from helpers import killed_and_resumed, rows


@pytest.mark.integration
@pytest.mark.parametrize("name, settings, kill_at", [
    # Adam + cosine schedule + hidden state carried across windows
    ("rnn_sincos", {"epochs": 6, "scheduler": {"name": "CosineAnnealingLR", "T_max": 6}}, 2),
    # several models in one run, one checkpoint folder each; row 5 is Adam's 2nd epoch
    ("optimizers", {"epochs": 3, "optimizers": ["SGD", "Adam"]}, 5),
])
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, monkeypatch, name, settings, kill_at):
    killed_and_resumed(tmp_path, monkeypatch, name, settings, kill_at)


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    from torchclassics import run

    first = run("regression", out=tmp_path / "r", epochs=5, figures=False)
    again = run("regression", out=tmp_path / "r", epochs=5, figures=False, resume=True)
    assert again.metrics == first.metrics
    assert len(rows(tmp_path / "r")) == 5


def test_resume_can_extend_epochs(tmp_path):
    from torchclassics import run

    run("regression", out=tmp_path / "r", epochs=5, figures=False)
    longer = run("regression", out=tmp_path / "r", epochs=8, figures=False, resume=True)
    straight = run("regression", out=tmp_path / "s", epochs=8, figures=False)
    assert longer.metrics == pytest.approx(straight.metrics, abs=1e-6)
    assert len(rows(tmp_path / "r")) == 8


def test_resume_survives_a_torn_metrics_line_and_records_new_epochs(tmp_path):
    from torchclassics import run

    run("regression", out=tmp_path / "r", epochs=3, figures=False)
    with open(tmp_path / "r" / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 4, "ste')  # what a kill in the middle of a write leaves
    run("regression", out=tmp_path / "r", epochs=5, figures=False, resume=True)
    assert [row["epoch"] for row in rows(tmp_path / "r")] == [1, 2, 3, 4, 5]
    assert json.loads((tmp_path / "r" / "params.json").read_text())["epochs"] == 5

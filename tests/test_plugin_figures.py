"""A plugin gets figures for free: an experiment whose figures() draws nothing still gets the loss
curves (with accuracy beside them), and the other metrics a Task measures get their curves."""
from __future__ import annotations

import pytest

from torchclassics.cli import main


@pytest.mark.integration
def test_an_experiment_that_draws_nothing_gets_the_loss_curves(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "mine", ".", "--module", "mine.py"]) == 0
    source = (tmp_path / "mine.py").read_text()
    assert "class Mine(Experiment):\n" in source
    (tmp_path / "mine.py").write_text(source.replace(
        "class Mine(Experiment):\n", "class Mine(Experiment):\n    def figures(self, run, folder):\n        pass\n\n"))
    assert main(["run", "mine", "--module", "mine.py", "--out", "r", "--set", "epochs=2", "-q"]) == 0
    assert "figures/: loss.png" in capsys.readouterr().out
    assert (tmp_path / "r" / "figures" / "loss.png").stat().st_size > 1000
    assert main(["figures", "r", "--module", "mine.py"]) == 0  # drawn again from the run folder alone
    assert "loss.png" in capsys.readouterr().out


def test_other_metrics_get_curves_of_their_own(tmp_path):
    from torchclassics.viz.plots import drawn_by_us, metric_curves

    history = [{"epoch": e, "f1": 0.5 + e / 10, "test_f1": 0.4 + e / 10, "mae": 1 / e, "test_mae": 1.2 / e}
               for e in range(1, 4)]
    path = metric_curves(history, ["f1", "mae"], tmp_path / "metrics.png", "mine")
    assert path.is_file() and drawn_by_us(path)

"""The dropout experiment: a tiny run draws its figures, both nets start alike, the lesson's
claim (dropout ends with the lower held-out MSE), and an exact resume after SIGKILL."""
import pytest
import torch
from PIL import Image

from helpers import killed_and_resumed
from torchclassics import evaluate, run
from torchclassics.config import resolve
from torchclassics.registry import get

FIGURES = ["fit.png", "loss.png", "animation.gif"]


def test_tiny_run_writes_its_figures(tmp_path):
    result = run("dropout", out=tmp_path / "d", epochs=6, gif_frames=3, hidden=50)
    for figure in FIGURES:
        with Image.open(result.run_dir / "figures" / figure) as image:
            assert image.width > 100 and image.height > 100, figure
    with Image.open(result.run_dir / "figures" / "animation.gif") as gif:
        assert gif.n_frames >= 2
    assert set(result.metrics) == {"mse_plain", "mse_dropout", "test_mse_plain", "test_mse_dropout"}
    # best.pt holds both nets at the dropout net's best epoch: evaluate finds its held-out MSE again
    best = result.summary["best"]
    assert evaluate(result.run_dir)[best["metric"]] == pytest.approx(best["value"], rel=1e-5)


def test_both_nets_start_from_the_same_weights_and_differ_by_dropout_alone():
    task = get("dropout").build(resolve("dropout"), torch.device("cpu"))
    plain, dropped = task.models["plain"], task.models["dropout"]
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), dropped.state_dict().values()))
    x = torch.linspace(-1, 1, 7).unsqueeze(1)
    plain.eval(), dropped.eval()
    assert torch.equal(plain(x), dropped(x))  # eval mode: dropout off, the same function
    dropped.train()
    assert not torch.equal(dropped(x), dropped(x))  # train mode: a fresh mask per forward


@pytest.mark.integration
def test_dropout_ends_with_the_lower_held_out_mse(tmp_path):
    """The lesson's claim, at the defaults but fewer epochs (the page gives the full runs)."""
    m = run("dropout", out=tmp_path / "d", epochs=300, figures=False).metrics
    assert m["test_mse_dropout"] < m["test_mse_plain"]
    assert m["mse_plain"] < m["mse_dropout"]  # the plain net fits the training noise closer


@pytest.mark.integration
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    """Dropout masks come from the global generator: the checkpoint's RNG state must bring them back."""
    killed_and_resumed(tmp_path, monkeypatch, "dropout", {"epochs": 60, "hidden": 100}, 5)

"""The batchnorm experiment: a tiny run draws its figures, the nets with and without batch
normalization start alike, the lesson's claim (batch normalization trains where the plain
deep net stalls), what eval mode uses, and an exact resume after SIGKILL."""
import pytest
import torch
from PIL import Image

from helpers import killed_and_resumed
from torchclassics import evaluate, run
from torchclassics.config import resolve
from torchclassics.errors import UserError
from torchclassics.models.regularized import DeepNet
from torchclassics.registry import get

FIGURES = ["loss.png", "histograms.png", "running_stats.png", "fit.png", "animation.gif"]
NETS = ("tanh_plain", "tanh_bn", "relu_plain", "relu_bn")


@pytest.mark.integration
def test_tiny_run_writes_its_figures_and_the_running_statistics(tmp_path):
    result = run("batchnorm", out=tmp_path / "b", epochs=2, n_points=128, n_test=20, gif_frames=2)
    for figure in FIGURES:
        with Image.open(result.run_dir / "figures" / figure) as image:
            assert image.width > 100 and image.height > 100, figure
    with Image.open(result.run_dir / "figures" / "animation.gif") as gif:
        assert gif.n_frames >= 2
    assert {f"test_mse_{name}" for name in NETS} <= result.metrics.keys()
    stats = result.summary["running_statistics"]
    assert set(stats) == {"tanh_bn", "relu_bn"}  # the plain nets have none
    assert list(stats["tanh_bn"]) == ["input"] + [f"layer {i}" for i in range(1, 9)]
    assert len(stats["tanh_bn"]["layer 8"]["var"]) == 10
    # evaluate reads the best net's best.pt into that net's architecture
    best = result.summary["best"]
    assert best["net"] == result.summary["best_net"]
    assert evaluate(result.run_dir)["test_mse"] == pytest.approx(best["value"], rel=1e-5)


def test_with_and_without_batch_norm_the_linear_layers_start_alike():
    task = get("batchnorm").build(resolve("batchnorm", overrides={"n_points": 64}), torch.device("cpu"))
    plain, normalized = task.context["nets"]["tanh_plain"], task.context["nets"]["tanh_bn"]
    for a, b in zip(plain.fcs, normalized.fcs):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


@pytest.mark.integration
def test_batch_norm_trains_where_the_plain_deep_net_stalls(tmp_path):
    """The lesson's claim, at the defaults but 4 epochs of 12 (the page gives full runs, 5 seeds)."""
    m = run("batchnorm", out=tmp_path / "b", epochs=4, figures=False).metrics
    for activation in ("tanh", "relu"):
        assert m[f"test_mse_{activation}_bn"] < 0.5 * m[f"test_mse_{activation}_plain"], activation


def test_eval_mode_normalizes_by_the_running_statistics():
    """Train mode normalizes by the batch (a prediction depends on its batch-mates, one sample
    cannot be normalized); eval mode by the running estimates (each sample alone)."""
    net = DeepNet(2, 4, "tanh", batch_norm=True)
    x = torch.linspace(-7, 10, 64).unsqueeze(1)
    net.train()
    net(x)  # one training forward updates the running statistics
    assert net.input_norm.running_mean.item() == pytest.approx(0.5 * x.mean().item(), rel=1e-5)  # momentum 0.5
    with pytest.raises(ValueError):
        net(x[:1])
    net.eval()
    alone = torch.cat([net(x[i:i + 1]) for i in range(len(x))])
    assert torch.allclose(alone, net(x), atol=1e-6)
    net.train()
    assert not torch.allclose(net(x[:32])[0], net(x[:16])[0])  # the same sample, other batch-mates


def test_a_reversed_x_range_is_refused_in_one_line():
    with pytest.raises(UserError, match="x_range"):
        get("batchnorm").build(resolve("batchnorm", overrides={"x_range": [3, -3]}), torch.device("cpu"))


@pytest.mark.integration
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    """Four sub-runs, one checkpoint folder each; the kill lands in the second (tanh_bn)."""
    whole, resumed = killed_and_resumed(tmp_path, monkeypatch, "batchnorm", {"epochs": 6, "n_points": 512}, 8)
    assert "resumed tanh_bn at epoch" in (resumed.run_dir / "train.log").read_text()
    assert resumed.summary["running_statistics"] == whole.summary["running_statistics"]

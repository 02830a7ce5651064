"""dcgan_mnist on a small real-format MNIST folder: it runs, draws, judges its digits, exports its
generator and resumes exactly after a SIGKILL."""

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import killed_and_resumed, one_line_error
from torchclassics import run
from torchclassics.cli import main
from torchclassics.experiments.dcgan_mnist import frechet_distance, grid

TINY = {"download": False, "epochs": 2, "batch_size": 32, "width": 4, "noise_dim": 16, "judge_steps": 5,
        "eval_digits": 100, "gif_frames": 2}


def image_ok(path, frames: int = 1) -> None:
    with Image.open(path) as image:
        assert image.width > 100 and image.height > 100, path.name
        assert getattr(image, "n_frames", 1) >= frames, path.name


def test_frechet_distance_is_zero_for_the_same_sample_and_grows_with_a_shift():
    features = np.random.default_rng(0).normal(size=(500, 4))
    assert frechet_distance(features, features) == pytest.approx(0, abs=1e-8)
    assert frechet_distance(features, features + 1.0) == pytest.approx(4.0, rel=1e-6)  # |shift|^2, same covariance


def test_the_grid_puts_digits_in_rows():
    digits = torch.arange(4).repeat_interleave(28 * 28).reshape(4, 28, 28).to(torch.uint8)
    image = grid(digits)
    assert image.shape == (60, 60) and image[1 + 14, 30 + 1 + 14] == 1 and image[30 + 15, 15] == 2


@pytest.mark.integration
def test_tiny_run_draws_judges_and_exports_the_generator(tmp_path, mnist_folder):
    result = run("dcgan_mnist", out=tmp_path / "d", data_root=str(mnist_folder), **TINY)
    figures = result.run_dir / "figures"
    for name in ("samples.png", "loss.png", "quality.png"):
        image_ok(figures / name)
    image_ok(figures / "animation.gif", frames=2)
    summary = result.summary
    assert str(mnist_folder) in summary["data"] and summary["judge"]["steps"] == 5
    assert {"loss_d", "loss_g", "d_real", "d_fake", "test_fd", "test_confident"} <= result.metrics.keys()
    assert summary["real_digits"]["test_fd"] < summary["at_init"]["test_fd"]  # real digits beat noise
    record = torch.load(result.run_dir / "checkpoints" / "last.pt", weights_only=True)["record"]
    assert record["grid_noise"].shape == (64, 16) and [f["epoch"] for f in record["frames"]] == [0, 1, 2]
    assert main(["export", str(result.run_dir), "--format", "exported", "--checkpoint", "last"]) == 0
    program = torch.export.load(str(result.run_dir / "export" / "model.pt2")).module()
    noise = torch.randn(3, 16)
    with torch.no_grad():
        assert torch.allclose(program(noise), result.model.cpu().eval()(noise), atol=1e-5)


def test_a_batch_larger_than_the_data_is_one_line(tmp_path, mnist_folder, capsys):
    code = main(["run", "dcgan_mnist", "--out", str(tmp_path / "x"), "--set", f"data_root={mnist_folder}",
                 "--set", "download=false", "--set", "batch_size=601"])
    assert code == 2 and "batch_size=601: more than the 600 training digits" in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "x").exists()


@pytest.mark.integration
def test_training_brings_the_digits_closer_to_real_ones(tmp_path, mnist_folder):
    """The default nets, 270 steps on 600 digits: the Fréchet distance falls several-fold."""
    result = run("dcgan_mnist", out=tmp_path / "d", data_root=str(mnist_folder), download=False, epochs=15,
                 batch_size=32, judge_steps=50, eval_digits=200, figures=False)
    assert result.metrics["test_fd"] < result.summary["at_init"]["test_fd"] / 3


@pytest.mark.integration
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, mnist_folder, monkeypatch):
    settings = {**TINY, "epochs": 4, "data_root": str(mnist_folder)}
    killed_and_resumed(tmp_path, monkeypatch, "dcgan_mnist", settings, kill_at=2)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    last = {path.name: torch.load(path / "checkpoints" / "last.pt", weights_only=True)["record"]
            for path in (whole, killed)}
    assert all(torch.equal(a["digits"], b["digits"]) for a, b in zip(last["killed"]["frames"], last["whole"]["frames"]))
    assert torch.equal(last["killed"]["step_losses"], last["whole"]["step_losses"])

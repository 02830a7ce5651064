"""gan_curves: the painter GAN runs, draws, learns the artist's family, exports its generator and
resumes exactly after a SIGKILL."""

import pytest
import torch
from PIL import Image

from helpers import killed_and_resumed, rows
from torchclassics import run, search
from torchclassics.cli import main
from torchclassics.data.paintings import canvas, nearest_in_family, paint

TINY = {"epochs": 3, "steps_per_epoch": 20, "eval_paintings": 100, "gif_frames": 2}


def image_ok(path, frames: int = 1) -> None:
    with Image.open(path) as image:
        assert image.width > 100 and image.height > 100, path.name
        assert getattr(image, "n_frames", 1) >= frames, path.name


def test_the_distance_to_the_family_is_zero_on_it_and_grows_off_it():
    x = canvas(15)
    a = torch.tensor([1.0, 1.3, 2.0])
    fitted, distance = nearest_in_family(paint(a, x), x)
    assert torch.allclose(fitted, a) and torch.allclose(distance, torch.zeros(3), atol=1e-6)
    above = paint(torch.tensor([2.0]), x) + 0.5  # above the upper bound: a is held at 2
    fitted, distance = nearest_in_family(above, x)
    assert fitted.item() == 2.0 and distance.item() == pytest.approx(0.5, abs=1e-6)


def test_shipped_search_space_is_valid():
    space = search.load_space("gan_curves", None)
    assert {d.key for d in space} == {"lr", "hidden"}
    search.check_space("gan_curves", space, {})


def test_tiny_run_writes_its_figures_and_exports_the_generator(tmp_path):
    result = run("gan_curves", out=tmp_path / "g", **TINY)
    figures = result.run_dir / "figures"
    for name in ("painting.png", "loss.png"):
        image_ok(figures / name)
    image_ok(figures / "animation.gif", frames=2)
    assert {"loss_d", "loss_g", "d_real", "d_fake", "test_distance", "test_d_score"} <= result.metrics.keys()
    assert result.summary["best"]["metric"] == "test_distance"
    assert len(rows(result.run_dir)) == 3
    assert main(["export", str(result.run_dir), "--format", "exported", "--checkpoint", "last"]) == 0
    program = torch.export.load(str(result.run_dir / "export" / "model.pt2")).module()
    ideas = torch.randn(4, 5)
    with torch.no_grad():
        assert torch.allclose(program(ideas), result.model.cpu().eval()(ideas), atol=1e-5)


@pytest.mark.integration
def test_the_painter_learns_the_family(tmp_path):
    """1,500 steps (of the tutorial's 10,000): the paintings come several times closer to the
    family of curves, and the discriminator is left unsure (D score near 2 log 1/2)."""
    result = run("gan_curves", out=tmp_path / "g", epochs=15, steps_per_epoch=100, figures=False)
    start_distance = result.summary["at_init"]["test_distance"]
    assert result.metrics["test_distance"] < start_distance / 3
    assert result.metrics["test_d_score"] == pytest.approx(-1.386, abs=0.15)


@pytest.mark.integration
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    settings = {"epochs": 6, "steps_per_epoch": 50, "eval_paintings": 200}
    expected, got = killed_and_resumed(tmp_path, monkeypatch, "gan_curves", settings, kill_at=3)
    assert got.summary["at_init"] == expected.summary["at_init"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    last = {path.name: torch.load(path / "checkpoints" / "last.pt", weights_only=True)["record"]
            for path in (whole, killed)}
    assert torch.equal(last["killed"]["step_losses"], last["whole"]["step_losses"])  # the loss figure's data too
    assert len(last["whole"]["step_losses"]) == 300

"""Optional TensorBoard curves: written when the package is there, purged on resume, absent otherwise."""
import builtins

import pytest

from torchclassics import run

pytest.importorskip("tensorboard")


def scalars(run_dir, tag="test_mse"):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_each_epoch_is_a_tensorboard_point(tmp_path):
    result = run("regression", out=tmp_path / "r", epochs=4, figures=False)
    points = scalars(result.run_dir)
    assert [step for step, _ in points] == [1, 2, 3, 4]
    assert points[-1][1] == pytest.approx(result.metrics["test_mse"])


def test_resume_purges_and_continues_the_curve(tmp_path):
    run("regression", out=tmp_path / "r", epochs=3, figures=False)
    run("regression", out=tmp_path / "r", epochs=5, figures=False, resume=True)
    assert [step for step, _ in scalars(tmp_path / "r")] == [1, 2, 3, 4, 5]


def test_without_tensorboard_nothing_breaks(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    result = run("regression", out=tmp_path / "r", epochs=2, figures=False)
    assert not (result.run_dir / "tensorboard").exists()
    assert result.metrics["test_mse"] > 0

"""Phones: ``export --format executorch`` writes a .pte program that ExecuTorch's own runtime runs
as the model does, and ``--quantize int8`` shrinks a CNN at a measured cost in accuracy.

Without ExecuTorch (the default install) the command is one line naming the extra; that part
runs everywhere. The rest runs where ``pip install "torchclassics[executorch]"`` was done
(CI: a job installing ``.[dev,executorch]``), and is skipped elsewhere."""
import importlib.util
import json
import sys

import pytest
import torch

from helpers import one_line_error
from torchclassics import run
from torchclassics.cli import main
from torchclassics.deploy import executorch as executorch_export

HAVE_EXECUTORCH = importlib.util.find_spec("executorch") is not None
needs_executorch = pytest.mark.skipif(not HAVE_EXECUTORCH, reason='needs pip install "torchclassics[executorch]"')
external = pytest.mark.external  # ExecuTorch: a separate extra, about 270 MB


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    return run("regression", out=tmp_path_factory.mktemp("runs") / "regression", figures=False, quiet=True,
               epochs=20)


def error_line(capsys) -> str:
    """The one error line (the command's phase lines before it aside), no traceback."""
    return one_line_error(capsys.readouterr().err)


def test_without_executorch_the_export_is_one_line_naming_the_extra(regression, monkeypatch, capsys):
    # What an install without the extra has; its submodules too, when an earlier test imported them
    for name in ["executorch", *(m for m in sys.modules if m.startswith("executorch."))]:
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["export", str(regression.run_dir), "--format", "executorch"]) == 2
    line = error_line(capsys)
    assert 'pip install "torchclassics[executorch]" (from PyPI) or pip install ".[executorch]" (in a clone)' in line
    assert not (regression.run_dir / "export").exists()


def test_quantize_is_for_executorch_only(regression, capsys):
    assert main(["export", str(regression.run_dir), "--format", "onnx", "--quantize", "int8"]) == 2
    line = error_line(capsys)
    assert "int8" in line and "works with fmt='executorch' only" in line


def run_program(path, inputs: torch.Tensor) -> list[torch.Tensor]:
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(path).load_method("forward")
    return [method.execute([row])[0] for row in inputs.split(1)]


@external
@needs_executorch
def test_the_program_runs_in_executorchs_runtime_as_the_model_does(regression, capsys):
    assert main(["export", str(regression.run_dir), "--format", "executorch", "--checkpoint", "last"]) == 0
    out = capsys.readouterr().out
    path = regression.run_dir / "export" / "model.pte"
    assert out.startswith(f"{path}\n") and "largest difference from the model" in out and "ms per call" in out
    record = json.loads(path.with_name("model.pte.json").read_text())
    assert record["export_format"] == "executorch" and record["delegate"] == "XnnpackBackend"
    assert record["outside_delegate"] == {} and record["batch"] == 1 and record["input_shape"] == [1]
    assert record["max_difference"] <= executorch_export.TOLERANCE and record["bytes"] == path.stat().st_size
    inputs = torch.linspace(-1, 1, 7).unsqueeze(1)  # not the example it was checked on
    model = regression.model.cpu().eval()
    with torch.no_grad():
        for row, got in zip(inputs.split(1), run_program(path, inputs)):
            assert torch.allclose(got, model(row), atol=1e-5)


@external
@needs_executorch
def test_a_program_that_differs_from_the_model_is_refused_and_not_written(regression, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(executorch_export, "TOLERANCE", -1.0)  # no program can be that close
    path = tmp_path / "refused.pte"
    assert main(["export", str(regression.run_dir), "--format", "executorch", "-o", str(path)]) == 2
    assert "does not reproduce the model's output" in error_line(capsys)
    assert list(tmp_path.iterdir()) == []


@external
@needs_executorch
def test_int8_cnn_is_smaller_and_nearly_as_accurate(tmp_path, capsys):
    trained = run("cnn_mnist", out=tmp_path / "cnn", figures=False, quiet=True, tsne_points=50)
    assert main(["export", str(trained.run_dir), "--format", "executorch", "--quantize", "int8"]) == 0
    path = trained.run_dir / "export" / "model-int8.pte"
    record = json.loads(path.with_name(path.name + ".json").read_text())
    before, after = record["before"], record["after"]
    assert record["quantize"] == "int8" and record["calibration_samples"] > 0
    assert after["bytes"] == path.stat().st_size < before["bytes"] / 2.5  # int8 weights: a quarter, plus the graph
    assert before["test_accuracy"] == pytest.approx(trained.metrics["test_accuracy"], abs=1e-6)
    assert after["test_accuracy"] > before["test_accuracy"] - 0.03 and after["test_accuracy"] > 0.8
    assert f"int8: {before['bytes']:,} -> {after['bytes']:,} bytes" in capsys.readouterr().out

"""Export without pickle: ONNX (checked with onnxruntime), torch.export and TorchScript archives
reproduce the trained model, for any batch size."""
import warnings

import pytest
import torch

from torchclassics import run
from torchclassics.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return run("rnn_sincos", out=tmp_path_factory.mktemp("runs") / "rnn", figures=False, epochs=2,
               train_windows=10, test_windows=4)


def reference(result, batch):
    model = result.model.cpu().eval()
    with torch.no_grad():
        return model(batch)[0]


@pytest.mark.integration
def test_onnx_export_runs_in_onnxruntime_with_another_batch_size(trained, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "rnn.onnx"
    assert main(["export", str(trained.run_dir), "--format", "onnx", "-o", str(path), "--checkpoint", "last"]) == 0
    batch = torch.sin(torch.linspace(0, 6, 5 * 10)).reshape(5, 10, 1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: batch.numpy()})[0]
    assert torch.allclose(torch.from_numpy(got), reference(trained, batch), atol=1e-5)


@pytest.mark.parametrize("fmt, load", [
    ("exported", lambda p: torch.export.load(str(p)).module()),
    ("torchscript", lambda p: torch.jit.load(str(p))),
])
def test_archive_export_reloads_without_the_python_class(trained, tmp_path, fmt, load):
    path = tmp_path / f"model.{fmt}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        assert main(["export", str(trained.run_dir), "--format", fmt, "-o", str(path), "--checkpoint", "last"]) == 0
        module = load(path)
    batch = torch.cos(torch.linspace(0, 3, 3 * 10)).reshape(3, 10, 1)
    assert torch.allclose(module(batch)[0], reference(trained, batch), atol=1e-5)


def test_default_path_is_inside_the_run(trained):
    assert main(["export", str(trained.run_dir), "--format", "exported", "--checkpoint", "last"]) == 0
    assert (trained.run_dir / "export" / "model.pt2").is_file()


def test_export_of_a_missing_run_is_one_clear_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope")]) == 2
    assert "is not a run directory" in capsys.readouterr().err

"""The GPU path (skipped without CUDA): data and model on the GPU, same numbers as the CPU
within float tolerance, checkpoints readable on a CPU-only machine, exact resume on the GPU."""
import json

import pytest
import torch

from torchclassics import evaluate, run

pytestmark = pytest.mark.gpu  # skipped without CUDA (conftest.py)


def test_cuda_run_matches_cpu(tmp_path):
    gpu = run("classification", out=tmp_path / "gpu", device="cuda", figures=False, epochs=20)
    cpu = run("classification", out=tmp_path / "cpu", device="cpu", figures=False, epochs=20)
    assert json.loads((tmp_path / "gpu" / "summary.json").read_text())["device"].startswith("cuda")
    assert next(gpu.model.parameters()).is_cuda
    for key, value in cpu.metrics.items():
        assert gpu.metrics[key] == pytest.approx(value, abs=1e-4), key


def test_gpu_checkpoint_evaluates_on_cpu(tmp_path):
    result = run("regression", out=tmp_path / "r", device="cuda", figures=False, epochs=10)
    metrics = evaluate(result.run_dir, "last", device="cpu")
    assert metrics["test_mse"] == pytest.approx(result.metrics["test_mse"], rel=1e-4)


def test_resume_on_gpu_is_exact(tmp_path):
    whole = run("rnn_sincos", out=tmp_path / "whole", device="cuda", figures=False, epochs=4)
    run("rnn_sincos", out=tmp_path / "part", device="cuda", figures=False, epochs=2)
    resumed = run("rnn_sincos", out=tmp_path / "part", device="cuda", figures=False, epochs=4, resume=True)
    for key, value in whole.metrics.items():
        assert resumed.metrics[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_resumes_exactly_on_the_gpu(tmp_path, precision):
    whole = run("rnn_sincos", out=tmp_path / "whole", device="cuda", figures=False, epochs=4, precision=precision)
    run("rnn_sincos", out=tmp_path / "part", device="cuda", figures=False, epochs=2, precision=precision)
    resumed = run("rnn_sincos", out=tmp_path / "part", device="cuda", figures=False, epochs=4, resume=True)
    state = torch.load(tmp_path / "part" / "checkpoints" / "last.pt", weights_only=True)
    assert (state["scaler"] is not None) == (precision == "fp16")  # the GradScaler's state is checkpointed
    for key, value in whole.metrics.items():
        assert resumed.metrics[key] == pytest.approx(value, abs=1e-6), key


def test_whole_step_graphs_resume_exactly(tmp_path):
    settings = dict(device="cuda", figures=False, n_points=1000, batch_size=64, optimizer="Adam", lr=0.01)
    whole = run("regression", out=tmp_path / "whole", epochs=6, cuda_graphs=True, **settings)
    run("regression", out=tmp_path / "part", epochs=3, cuda_graphs=True, **settings)
    resumed = run("regression", out=tmp_path / "part", epochs=6, resume=True, device="cuda", figures=False)
    for key, value in whole.metrics.items():
        assert resumed.metrics[key] == pytest.approx(value, rel=1e-5), key

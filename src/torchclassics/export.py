"""Export a trained run for deployment, without pickle: ONNX, torch.export (.pt2) or TorchScript.

"Save the whole network" in the old lessons meant pickling the module, which current
``torch.load`` refuses by default (weights_only). These formats carry the architecture as a
graph instead; every export is loaded back and checked against the model on an example batch.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .api import load_run
from .errors import UserError

SUFFIX = {"onnx": ".onnx", "exported": ".pt2", "torchscript": ".ts"}
TOLERANCE = 1e-4


def example_input(task) -> torch.Tensor:
    """A small real batch of the run's own data (held-out split if there is one)."""
    data = task.test if task.test is not None else task.train
    inputs, _ = next(iter(data.epoch(0)))
    inputs = inputs[:2].detach().cpu()
    # Two samples, not one: a batch of 1 would let the exporter fix the batch size at 1.
    return inputs if len(inputs) == 2 else inputs.repeat(2, *[1] * (inputs.dim() - 1))


def _tensors(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for item in output for t in _tensors(item)] if isinstance(output, (tuple, list)) else []


def _check(reference, got, fmt: str) -> None:
    for want, have in zip(_tensors(reference), got):
        have = torch.as_tensor(have)
        if want.shape != have.shape or not torch.allclose(want, have, atol=TOLERANCE, rtol=TOLERANCE):
            raise RuntimeError(f"the {fmt} export does not reproduce the model's output")


def _onnx(model, example, path: Path) -> list:
    try:
        import onnxruntime
    except ImportError:
        raise UserError('--format onnx needs onnx, onnxscript and onnxruntime: pip install "torchclassics[export]".') from None
    torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False, verbose=False,
                      input_names=["input"], dynamic_shapes=({0: torch.export.Dim.AUTO},))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: example.numpy()})


def _exported(model, example, path: Path) -> list:
    program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, str(path))
    return _tensors(torch.export.load(str(path)).module()(example))


def _torchscript(model, example, path: Path) -> list:
    traced = torch.jit.trace(model, example)
    torch.jit.save(traced, str(path))
    return _tensors(torch.jit.load(str(path))(example))


def export(run_path, fmt: str = "onnx", output=None, checkpoint_name: str = "best") -> Path:
    """Write the run's model in ``fmt`` (default ``<run>/export/model.<suffix>``) and verify it."""
    if fmt not in SUFFIX:
        raise UserError(f"--format {fmt}: choose one of {', '.join(SUFFIX)}.")
    _, params, task, _, _ = load_run(run_path, checkpoint_name, "cpu")
    model = task.model.eval()
    example = example_input(task)
    path = Path(output) if output else Path(run_path) / "export" / f"model{SUFFIX[fmt]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = {"onnx": _onnx, "exported": _exported, "torchscript": _torchscript}[fmt]
    with torch.no_grad():
        reference = model(example)
        got = writer(model, example, path)
    _check(reference, got, fmt)
    return path

"""Export a trained run for deployment, without pickle: ONNX, torch.export (.pt2) or TorchScript.

"Save the whole network" in the old lessons meant pickling the module, which current
``torch.load`` refuses by default (weights_only). These formats carry the architecture as a
graph instead; every export is loaded back and checked against the model on an example batch.
Beside each export, ``<file>.json`` says which run and checkpoint it came from: an ``-o`` file
that is not an export of the same run is never overwritten without ``--force``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from . import atomic
from .api import load_run
from .errors import UserError

SUFFIX = {"onnx": ".onnx", "exported": ".pt2", "torchscript": ".ts"}
TOLERANCE = 1e-4


def _tensors(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for item in output for t in _tensors(item)] if isinstance(output, (tuple, list)) else []


def _max_difference(reference, got) -> float:
    worst = 0.0
    for want, have in zip(_tensors(reference), got):
        have = torch.as_tensor(have)
        if want.shape != have.shape:
            return float("inf")
        worst = max(worst, float((want - have).abs().max()))
    return worst


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


def _origin(run_path, checkpoint_name: str, fmt: str) -> dict:
    return {"run": str(Path(run_path).resolve()), "checkpoint": checkpoint_name, "format": fmt}


def check_target(path: Path, run_path, force: bool) -> None:
    """Refuse to replace a file that is not an export of this run (unless ``force``)."""
    if not path.exists() or force:
        return
    if path.is_dir():
        raise UserError(f"-o {path} is a folder; give a file name such as {path / 'model.onnx'}.")
    sidecar = path.with_name(path.name + ".json")
    try:
        origin = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    except (OSError, ValueError):
        origin = {}
    if origin.get("run") != str(Path(run_path).resolve()):
        raise UserError(f"{path} exists and is not an export of {run_path}; choose another -o, or add --force "
                        "to replace it.")


def export(run_path, fmt: str = "onnx", output=None, checkpoint_name: str = "best", force: bool = False) -> Path:
    """Write the run's model in ``fmt`` (default ``<run>/export/model.<suffix>``) and verify it."""
    if fmt not in SUFFIX:
        raise UserError(f"--format {fmt}: choose one of {', '.join(SUFFIX)}.")
    path = Path(output) if output else Path(run_path) / "export" / f"model{SUFFIX[fmt]}"
    check_target(path, run_path, force)
    experiment, params, task, _, _ = load_run(run_path, checkpoint_name, "cpu", need_data=False)
    model = task.model.eval()
    example = experiment.example_input(task)
    if len(example) < 2:  # a batch of 1 would let the exporter fix the batch size at 1
        example = example.repeat(2, *[1] * (example.dim() - 1))
    writer = {"onnx": _onnx, "exported": _exported, "torchscript": _torchscript}[fmt]
    with torch.no_grad(), atomic.replaced_atomically(path) as tmp:
        reference = model(example)
        difference = _max_difference(reference, writer(model, example, tmp))
        if not difference <= TOLERANCE:
            raise UserError(f"the {fmt} export does not reproduce the model's output (largest difference "
                            f"{difference:.3g} > {TOLERANCE}); nothing was written.")
    atomic.write_json(path.with_name(path.name + ".json"),
                      {**_origin(run_path, checkpoint_name, fmt), "max_difference": difference,
                       "bytes": path.stat().st_size, "input_shape": list(example.shape[1:])})
    return path

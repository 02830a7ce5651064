"""The graph formats: ONNX (run back in onnxruntime), torch.export's ``.pt2`` and TorchScript.

Each writer saves the model to a file and loads that file back to run it on the example batch;
:func:`write_and_verify` keeps the file only if its output is the model's (within TOLERANCE).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..core import files
from ..core.errors import UserError
from .extras import install_hint

SUFFIX = {"onnx": ".onnx", "exported": ".pt2", "torchscript": ".ts"}
TOLERANCE = 1e-4


def tensors(output) -> list[torch.Tensor]:
    """Every tensor of a model's output (a tensor, or tuples and lists of them), in order."""
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for item in output for t in tensors(item)] if isinstance(output, (tuple, list)) else []


def max_difference(reference, got) -> float:
    """The largest absolute difference between the model's outputs and an export's (inf if shapes differ)."""
    worst = 0.0
    for want, have in zip(tensors(reference), got):
        have = torch.as_tensor(have)
        if want.shape != have.shape:
            return float("inf")
        worst = max(worst, float((want - have).abs().max()))
    return worst


def _onnx(model, example, path: Path) -> list:
    try:
        import onnxruntime
    except ImportError:
        raise UserError.for_option("fmt", "onnx", "needs onnx, onnxscript and onnxruntime: "
                                   f"{install_hint('export')}.") from None
    torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False, verbose=False,
                      input_names=["input"], dynamic_shapes=({0: torch.export.Dim.AUTO},))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: example.numpy()})


def _exported(model, example, path: Path) -> list:
    program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, str(path))
    return tensors(torch.export.load(str(path)).module()(example))


def _torchscript(model, example, path: Path) -> list:
    traced = torch.jit.trace(model, example)
    torch.jit.save(traced, str(path))
    return tensors(torch.jit.load(str(path))(example))


WRITERS = {"onnx": _onnx, "exported": _exported, "torchscript": _torchscript}


def write_and_verify(fmt: str, model, example: torch.Tensor, path: Path) -> dict:
    """Write ``model`` to ``path`` in ``fmt``, load it back and compare it with the model on ``example``;
    nothing is written when they differ. Returns what the sidecar records."""
    if len(example) < 2:  # a batch of 1 would let the exporter fix the batch size at 1
        example = example.repeat(2, *[1] * (example.dim() - 1))
    with torch.no_grad(), files.replaced_atomically(path) as tmp:
        reference = model(example)
        difference = max_difference(reference, WRITERS[fmt](model, example, tmp))
        if not difference <= TOLERANCE:
            raise UserError(f"the {fmt} export does not reproduce the model's output (largest difference "
                            f"{difference:.3g} > {TOLERANCE}); nothing was written.")
    return {"max_difference": difference, "bytes": path.stat().st_size, "input_shape": list(example.shape[1:])}

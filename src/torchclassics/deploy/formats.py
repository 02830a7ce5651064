"""The graph formats: ONNX (run back in onnxruntime), torch.export's ``.pt2`` and TorchScript.

Each writer saves the model to a file and loads that file back to run it on the example batch;
:func:`write_and_verify` keeps the file only if its output is the model's (within TOLERANCE).
"""
from __future__ import annotations

import json
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


def output_name(metadata: dict) -> str:
    """``logits`` for a classifier (its outputs are scores of ``classes``), else ``output``."""
    return "logits" if metadata.get("classes") else "output"


def _onnx(model, example, path: Path, metadata: dict) -> list:
    """The dynamo exporter (torch >= 2.5): the input named ``input``, the output ``logits`` or ``output``,
    the first axis a dynamic dimension named ``batch``; ``metadata`` in the file's metadata_props (JSON
    text for what is not text), where any ONNX runtime reads it."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError.for_option("fmt", "onnx", "needs onnx, onnxscript and onnxruntime: "
                                   f"{install_hint('export')}.") from None
    program = torch.onnx.export(model, (example,), None, dynamo=True, verbose=False, input_names=["input"],
                                output_names=[output_name(metadata)],
                                dynamic_shapes=({0: torch.export.Dim("batch")},))
    for key, value in metadata.items():
        program.model.metadata_props[key] = value if isinstance(value, str) else json.dumps(value)
    program.save(str(path), external_data=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: example.numpy()})


def _exported(model, example, path: Path, metadata: dict) -> list:
    program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, str(path))
    return tensors(torch.export.load(str(path)).module()(example))


def _torchscript(model, example, path: Path, metadata: dict) -> list:
    traced = torch.jit.trace(model, example)
    torch.jit.save(traced, str(path))
    return tensors(torch.jit.load(str(path))(example))


WRITERS = {"onnx": _onnx, "exported": _exported, "torchscript": _torchscript}


def write_and_verify(fmt: str, model, example: torch.Tensor, path: Path, metadata: dict | None = None) -> dict:
    """Write ``model`` to ``path`` in ``fmt`` (ONNX: with ``metadata``), load it back and compare it with the
    model on ``example``; nothing is written when they differ. Returns what the sidecar records."""
    if len(example) < 2:  # a batch of 1 would let the exporter fix the batch size at 1
        example = example.repeat(2, *[1] * (example.dim() - 1))
    with torch.no_grad(), files.replaced_atomically(path) as tmp:
        reference = model(example)
        difference = max_difference(reference, WRITERS[fmt](model, example, tmp, metadata or {}))
        if not difference <= TOLERANCE:
            raise UserError(f"the {fmt} export does not reproduce the model's output (largest difference "
                            f"{difference:.3g} > {TOLERANCE}); nothing was written.")
    return {"max_difference": difference, "bytes": path.stat().st_size, "input_shape": list(example.shape[1:])}

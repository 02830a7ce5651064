"""Predictions from an exported ONNX file alone: its metadata_props say how a file becomes an input
(``prepare``, ``normalisation``, ``input_shape``) and what each output is (``classes``), so
``torchclassics predict model.onnx digit.png`` needs neither the run folder nor the training code's model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import UserError
from ..core.extras import install_hint


def read_metadata(session) -> dict:
    """The file's metadata_props, JSON values decoded (text stays text)."""
    found = {}
    for key, value in session.get_modelmeta().custom_metadata_map.items():
        try:
            found[key] = json.loads(value)
        except ValueError:
            found[key] = value
    return found


def _prepared(path: Path, described: dict) -> np.ndarray:
    """One file as the model's input batch of one, as the export's metadata says to prepare it."""
    import torch

    how = described.get("prepare")
    if how == "mnist_digit":
        from ..data.digits import load_digit

        pixels = load_digit(path)[None].float()  # (1, 28, 28), 0..255
    elif how == "image":
        from ..data.images import load_image

        pixels = load_image(path, int(described["image_size"])).float()  # (3, size, size)
    else:
        raise UserError(f"this export says nothing of how to prepare a file (no 'prepare' in its metadata); "
                        f"predict with its run folder ({described.get('source_run', 'unknown')}).")
    norm = described.get("normalisation") or {"mean": [0.0], "std": [1.0]}
    mean = torch.tensor(norm["mean"]).view(-1, 1, 1)
    std = torch.tensor(norm["std"]).view(-1, 1, 1)
    inputs = (pixels / 255 - mean) / std
    return inputs.reshape(1, *described["input_shape"]).numpy().astype(np.float32)


def predict_files(path, inputs: list) -> list[dict]:
    """``{"file", "label", "probability"}`` or ``{"file", "error"}`` per file, from the ONNX file at ``path``."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError(f"predict with an .onnx file needs onnxruntime: {install_hint('export')}.") from None
    from ..data.digits import DigitError
    from ..data.images import UnusableImage

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    described = read_metadata(session)
    classes = described.get("classes")
    if not classes or "input_shape" not in described:
        raise UserError(f"{path}: not an export of a classifier with its description (classes, input_shape); "
                        "export the run again with this release.")
    rows = []
    for item in inputs:
        if not isinstance(item, Path):
            rows.append({"file": item, "error": "this export classifies image files, not texts"})
            continue
        try:
            batch = _prepared(item, described)
        except (DigitError, UnusableImage) as err:
            rows.append({"file": str(item), "error": str(err)})
            continue
        logits = session.run(None, {session.get_inputs()[0].name: batch})[0][0]
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        best = int(probabilities.argmax())
        label = classes[best]
        rows.append({"file": str(item), "label": int(label) if str(label).isdigit() else label,
                     "probability": float(probabilities[best])})
    return rows

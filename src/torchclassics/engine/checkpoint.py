"""Checkpoints: tensors and plain values only, written atomically, loaded with weights_only.

A checkpoint is a dict with at least ``"model"`` (a state dict). ``torch.load(weights_only=True)``
refuses anything else that a pickle could smuggle in; such a file is not ours and is never unpickled.
"""
from __future__ import annotations

import io
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import atomic
from ..errors import UserError


def save_atomic(obj: dict, path: Path) -> None:
    """Serialise in memory, then write the bytes atomically: a reader (or a crash, or a full
    disk) sees the old file or the new one, never half, and the error names ``path``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic.write_bytes(path, buffer.getvalue())


def load(path: Path, map_location="cpu") -> dict:
    """A checkpoint of ours, or a UserError in one line saying why ``path`` is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "unsupported global" in str(err).lower():  # a Python object refused: a foreign or hostile file
            raise UserError(f"{path} is not a torchclassics checkpoint (it holds Python objects, not only "
                            "tensors and plain values); it will not be unpickled.") from None
        raise UserError(f"{path} is not a readable checkpoint (not a PyTorch file, or damaged); delete it to "
                        "start over.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} is not a readable checkpoint ({first[:120]}); delete it to start over.") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise UserError(f"{path} is not a torchclassics checkpoint (no model weights in it).")
    return state


def load_weights(model: nn.Module, weights: dict, path: Path, what: str) -> None:
    """``model.load_state_dict(weights)``, or a UserError saying the checkpoint belongs to another model."""
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError) as err:
        detail = " ".join(str(err).split())
        raise UserError(f"{path} does not fit {what} ({detail[:200]}); it was written by another experiment "
                        "or with other parameters.") from None


def load_optimizer(optimizer, state: dict, path: Path, what: str) -> None:
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise UserError(f"{path} does not fit {what} ({' '.join(str(err).split())[:200]}); was the optimizer "
                        "changed since it was written?") from None


def rng_state() -> dict:
    """Every random generator the training touches, as tensors and plain values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached"]))
    random.setstate(_as_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value

"""Checkpoints: the only code that knows what a checkpoint holds.

* ``last.pt``, a :class:`TrainingState`: everything an exact resume needs (weights, optimizer and
  scheduler states, every random generator, the rows so far, what hooks recorded, the threads);
* ``best.pt``, a :class:`BestWeights`: the weights of the best epoch by the objective.

Both are plain dicts of tensors and plain values with a ``format`` number, written atomically,
and loaded with ``torch.load(weights_only=True)``: a pickled Python object is refused, never run.
Before anything trusts a file it is verified: its zip's CRC-32 checksums (one flipped bit is
caught; torch's own reader does not check them), then every value's type and range (an epoch the
rows do not reach, a random generator state of the wrong shape). Any failure is one
:class:`DamagedCheckpoint` line naming the file; nothing has been changed by then.

Format 0 is the release before format numbers (0.1.0): the same keys, no ``format``, no ``threads``.
"""
from __future__ import annotations

import io
import random
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.errors import DamagedCheckpoint, UserError
from ..core.files import write_bytes

FORMAT = 1


@dataclass
class TrainingState:
    model: dict
    rng: dict
    epoch: int
    step: int
    history: list
    models: dict = field(default_factory=dict)       # the other models by name (a GAN's discriminator)
    optimizers: dict = field(default_factory=dict)
    schedulers: dict = field(default_factory=dict)
    scaler: dict | None = None
    best: dict = field(default_factory=dict)
    step_losses: list = field(default_factory=list)
    record: dict = field(default_factory=dict)       # what the task's hooks keep (GIF frames)
    train_s: float = 0.0
    threads: int | None = None
    data: dict | None = None                         # data with a state of its own (a replay memory)
    params: dict | None = None                       # what the trainer trained with (format 1 on)
    format: int = FORMAT


@dataclass
class BestWeights:
    model: dict
    epoch: int
    best: dict
    models: dict = field(default_factory=dict)
    format: int = FORMAT


def save(record: TrainingState | BestWeights, path: Path) -> None:
    """Serialise in memory, then write the bytes atomically: a reader (or a crash, or a full disk)
    sees the old file or the new one, never half, and an error names ``path``."""
    buffer = io.BytesIO()
    torch.save(asdict_shallow(record), buffer)
    write_bytes(path, buffer.getvalue())


def asdict_shallow(record) -> dict:
    """The dataclass as a dict without deep-copying its tensors (``dataclasses.asdict`` would)."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


# -- reading -------------------------------------------------------------------------------------------
def _damaged(path: Path, why: str) -> DamagedCheckpoint:
    return DamagedCheckpoint(f"damaged checkpoint: {path}: {why}; delete it (and resume from the beginning) or "
                             "restore it from a copy.")


def read(path: Path, map_location="cpu") -> dict:
    """The verified contents of a checkpoint of ours, as a dict."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}.")
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()  # every member's CRC-32
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise _damaged(path, f"not a PyTorch checkpoint ({_first_line(err)})") from None
    if broken is not None:
        raise _damaged(path, f"its part {broken} fails its checksum (the file was changed or corrupted)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # the unpickler raises many kinds (UnpicklingError, IndexError, KeyError, ...)
        if "unsupported global" in str(err).lower() or "weights only load failed" in str(err).lower():
            raise _damaged(path, "it holds Python objects, not only tensors and plain values; it will not be "
                                 "unpickled") from None
        raise _damaged(path, f"unreadable ({_first_line(err)})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise _damaged(path, "not a torchclassics checkpoint (no model weights in it)")
    version = state.get("format", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise _damaged(path, f"format={version!r} is not a format number")
    if version > FORMAT:
        raise UserError(f"{path} was written by a newer torchclassics (checkpoint format {version}, this one reads "
                        f"up to {FORMAT}); upgrade torchclassics to read it.")
    return state


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:120]


def _check(path: Path, ok: bool, why: str) -> None:
    if not ok:
        raise _damaged(path, why)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_weights(path: Path, name: str, weights) -> None:
    _check(path, isinstance(weights, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                   for k, v in weights.items()),
           f"{name} is not a dict of tensors")


def _check_best(path: Path, best, epoch: int) -> None:
    _check(path, isinstance(best, dict), f"best={best!r} is not a dict")
    _check(path, best.get("value") is None or _is_number(best["value"]),
           f"best value {best.get('value')!r} is not a number")
    where = best.get("epoch")
    _check(path, where is None or (_is_int(where) and 0 <= where <= epoch),
           f"best epoch {where!r} is not an epoch the run reached (0 to {epoch})")


def load_training_state(path: Path, map_location="cpu") -> TrainingState:
    """last.pt, every value checked (see the module's docstring)."""
    state = read(path, map_location)
    epoch = state.get("epoch")
    _check(path, _is_int(epoch) and epoch >= 0, f"epoch={epoch!r} is not a whole number >= 0")
    history = state.get("history")
    _check(path, isinstance(history, list) and all(isinstance(row, dict) for row in history),
           f"history is {type(history).__name__}, not a list of rows")
    epochs = [row.get("epoch") for row in history]
    _check(path, epochs == list(range(1, epoch + 1)),
           f"epoch={epoch} but its rows are of epochs {_span(epochs)}, not 1 to {epoch}")
    _check(path, _is_int(state.get("step")) and state["step"] >= 0,
           f"step={state.get('step')!r} is not a whole number >= 0")
    for name in ("models", "optimizers", "schedulers", "record"):
        _check(path, isinstance(state.get(name, {}), dict), f"{name}={state.get(name)!r} is not a dict")
    _check_weights(path, "model", state["model"])
    for name, weights in state.get("models", {}).items():
        _check_weights(path, f"models[{name!r}]", weights)
    _check_best(path, state.get("best", {}), epoch)
    losses = state.get("step_losses", [])
    _check(path, isinstance(losses, list) and all(_is_number(v) for v in losses),
           "step_losses is not a list of numbers")
    _check(path, _is_number(state.get("train_s", 0.0)) and state.get("train_s", 0.0) >= 0, "train_s is not a duration")
    threads = state.get("threads")
    _check(path, threads is None or (_is_int(threads) and threads >= 1), f"threads={threads!r} is not a count >= 1")
    _check(path, state.get("scaler") is None or isinstance(state["scaler"], dict), "scaler is not a dict")
    _check(path, state.get("data") is None or isinstance(state["data"], dict), "data is not a dict")
    _check(path, state.get("params") is None or isinstance(state["params"], dict), "params is not a dict")
    check_rng_state(path, state.get("rng"))
    return _record(TrainingState, state)


def _record(kind, state: dict):
    """The typed record of a verified dict; a key this release does not know is left out."""
    known = {f.name for f in fields(kind)}
    return kind(**{**{k: v for k, v in state.items() if k in known}, "format": state.get("format", 0)})


def _span(epochs: list) -> str:
    shown = ", ".join(map(repr, epochs[:3])) + (", ..." if len(epochs) > 3 else "")
    return f"[{shown}]" if epochs else "none"


def load_best(path: Path, map_location="cpu") -> BestWeights:
    state = read(path, map_location)
    _check_weights(path, "model", state["model"])
    _check(path, isinstance(state.get("models", {}), dict), "models is not a dict")
    for name, weights in state.get("models", {}).items():
        _check_weights(path, f"models[{name!r}]", weights)
    epoch = state.get("epoch")
    _check(path, _is_int(epoch) and epoch >= 1, f"epoch={epoch!r} is not an epoch")
    _check_best(path, state.get("best", {}), epoch)
    return _record(BestWeights, state)


def load_weights_record(path: Path, which: str, map_location="cpu") -> tuple[dict, dict]:
    """(the main model's weights, the other models' weights by name) of ``last`` or ``best``."""
    record = load_training_state(path, map_location) if which == "last" else load_best(path, map_location)
    return record.model, record.models


# -- into live objects ---------------------------------------------------------------------------------
def load_weights(model: nn.Module, weights: dict, path: Path, what: str) -> None:
    """``model.load_state_dict(weights)``, or a UserError saying the checkpoint belongs to another model."""
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        detail = " ".join(str(err).split())
        raise UserError(f"{path} does not fit {what} ({detail[:200]}); it was written by another experiment "
                        "or with other parameters.") from None


def load_optimizer(optimizer, state: dict, path: Path, what: str) -> None:
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as err:
        raise UserError(f"{path} does not fit {what} ({' '.join(str(err).split())[:200]}); was the optimizer "
                        "changed since it was written?") from None


# -- random generators --------------------------------------------------------------------------------
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


def check_rng_state(path: Path, state) -> None:
    """Apply ``state`` to the CPU generators and put theirs back: what cannot be applied is damaged."""
    _check(path, isinstance(state, dict) and {"torch", "numpy", "python"} <= set(state), "rng is not a generator state")
    saved = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        set_rng_state({k: v for k, v in state.items() if k != "cuda"})
    except Exception as err:  # wrong sizes, types or values: torch, numpy and random raise their own kinds
        raise _damaged(path, f"its random generator state cannot be restored ({_first_line(err)})") from None
    finally:
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value

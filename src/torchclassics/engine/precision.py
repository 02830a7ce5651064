"""Mixed precision, as one parameter every experiment accepts: ``precision``.

* ``fp32`` (default): nothing changes.
* ``bf16``: the forward pass and the loss run under ``torch.autocast`` with bfloat16, on a CPU or a
  GPU. bfloat16 keeps float32's exponent range, so no loss scaling is needed.
* ``fp16``: autocast with float16 and a ``torch.amp.GradScaler`` that scales the loss before
  ``backward`` so small gradients do not underflow; CUDA only. The scaler's state is in every
  checkpoint, so a resumed run scales exactly as the uninterrupted one would have.

Weights, optimizer state and held-out metrics stay float32.
"""
from __future__ import annotations

import contextlib

import torch

from ..core.errors import UserError

KINDS = ("fp32", "bf16", "fp16")


class Precision:
    def __init__(self, kind: str, device: torch.device):
        self.check(kind, device)
        self.kind, self.device = kind, device
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(kind)
        self.scaler = torch.amp.GradScaler("cuda") if kind == "fp16" else None

    @staticmethod
    def check(kind: str, device: torch.device) -> None:
        """``kind`` on ``device``, refused in one line; cheap, so a run checks it before loading any data."""
        if kind not in KINDS:
            raise UserError(f"precision={kind!r}: choose one of {', '.join(KINDS)}.")
        if kind == "fp16" and device.type != "cuda":
            raise UserError(f"precision=fp16 needs a CUDA GPU (its GradScaler); on {device.type} use bf16 or fp32.")

    def autocast(self, cache: bool = True):
        """The forward pass and loss of a step (``cache=False`` inside a CUDA graph capture)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype, cache_enabled=cache)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer) -> None:
        """Before clipping: the gradients in their true scale."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)  # skipped when the scaled gradients overflowed
        else:
            optimizer.step()

    def update(self) -> None:
        """Once per training step, after every optimizer of the step has stepped."""
        if self.scaler is not None:
            self.scaler.update()

    def state_dict(self) -> dict | None:
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)

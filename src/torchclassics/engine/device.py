"""Device choice and seeding."""
from __future__ import annotations

import random

import numpy as np
import torch

from ..errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: cuda, then mps, then cpu. Asking for a device that is absent is a UserError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is visible to PyTorch. Use --device cpu or auto.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: Apple's MPS backend is not available here. Use --device cpu or auto.")
    if name not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {name}: unknown device. Allowed: auto, cpu, cuda, mps.")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seeds every generator; on CUDA also picks cuDNN's deterministic algorithms (these nets
    are small: reproducible numbers matter more than the fastest convolution)."""
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

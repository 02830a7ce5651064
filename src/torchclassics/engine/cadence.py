"""How often the engine writes a checkpoint; importable without torch, so a bad setting is answered
before anything slow starts."""
from __future__ import annotations

import math
import os

from ..core.errors import UserError

VARIABLE = "TORCHCLASSICS_CHECKPOINT_SECONDS"


def checkpoint_interval() -> float:
    """Seconds between two checkpoints: ``$TORCHCLASSICS_CHECKPOINT_SECONDS`` (default 2; 0: every epoch)."""
    raw = os.environ.get(VARIABLE, "2")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise UserError(f"{VARIABLE}={raw!r}: must be a number of seconds >= 0 (0 writes a checkpoint every epoch).")
    return seconds

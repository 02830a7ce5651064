"""Lesson figures: written atomically, like every other file of the package, into a folder the user
names; a file there that a lesson did not draw (a user's own figure of that name) is never replaced."""
from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import UserError
from ..viz.plots import drawn_by_us, save


def save_figure(fig, path: Path) -> Path:
    """``fig`` as the image ``path`` (the format from its suffix), never half written."""
    path = Path(path)
    if os.path.lexists(path) and not drawn_by_us(path):
        raise UserError(f"{path} exists and is not a figure torchclassics drew; give the lesson another folder "
                        "(--out), or move that file away.")
    return save(fig, path)

"""Lesson figures written like every other file of the package: to a temporary file renamed into place."""
from __future__ import annotations

from pathlib import Path

from ..core.files import replaced_atomically
from ..viz.plots import save


def save_figure(fig, path: Path) -> Path:
    """``fig`` as the image ``path`` (the format from its suffix), never half written."""
    with replaced_atomically(path) as tmp:
        save(fig, tmp)
    return Path(path)

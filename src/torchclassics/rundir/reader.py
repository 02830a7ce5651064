"""Reading a run directory: never a file that a symbolic link leads out of the run, never a file
that is not regular or is unreasonably large, and a damaged file costs that file, not the reader.

    folder = RunFolder(path)
    folder.params()        # params.json (a UserError if it is missing or unreadable)
    folder.summary()       # a Summary, or None for an unfinished run
    folder.rows()          # the rows of metrics.jsonl, and how many lines were unreadable
    folder.trial()         # a TrialMarker, or None
    folder.figures()       # image files below figures/, sorted
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..core import jsonfile
from ..core.errors import UserError
from ..core.files import is_inside
from . import layout
from .records import Row, Summary, TrialMarker

MAX_RECORD_BYTES = 64 << 20   # summary.json, params.json, trial.json: far above any real one
MAX_METRICS_BYTES = 1 << 30
IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".webp")


class OutsideRun(UserError):
    """A file of the run that a symbolic link leads out of it."""


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    def file(self, name: str) -> Path:
        return self.path / name

    def own(self, path: Path) -> Path:
        """``path`` if it stays inside the run; OutsideRun otherwise."""
        if os.path.lexists(path) and not is_inside(path, self.path):
            raise OutsideRun(f"{path} is a symbolic link out of {self.path} (to {Path(path).resolve()}); "
                             "it is not read.")
        return path

    def has(self, name: str) -> bool:
        return self.file(name).is_file()

    @property
    def is_run(self) -> bool:
        return self.has(layout.PARAMS)

    # -- the records --------------------------------------------------------------------------------
    def read_object(self, name: str) -> dict:
        return jsonfile.read_object(self.own(self.file(name)), MAX_RECORD_BYTES)

    def params(self) -> dict:
        if not self.file(layout.PARAMS).exists():
            raise UserError(f"{self.path} is not a run directory (no {layout.PARAMS}). Give a folder made by "
                            "`torchclassics run`.")
        return self.read_object(layout.PARAMS)

    def experiment(self) -> str:
        name = self.params().get("experiment")
        if not isinstance(name, str) or not name:
            raise UserError(f"{self.file(layout.PARAMS)} names no experiment.")
        return name

    def summary(self) -> Summary | None:
        if not os.path.lexists(self.file(layout.SUMMARY)):
            return None
        return Summary.from_json(self.read_object(layout.SUMMARY))

    def trial(self) -> TrialMarker | None:
        if not os.path.lexists(self.file(layout.TRIAL)):
            return None
        return TrialMarker.from_json(self.read_object(layout.TRIAL))

    def rows(self) -> tuple[list[dict], int]:
        """The rows of metrics.jsonl and how many lines could not be read: a run killed in the middle
        of a write leaves a torn last line, which costs that line only."""
        path = self.file(layout.METRICS)
        if not os.path.lexists(path):
            return [], 0
        text = jsonfile.read_bytes(self.own(path), MAX_METRICS_BYTES).decode("utf-8", errors="replace")
        rows, bad = [], 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                data = None
            row = Row.from_json(data) if isinstance(data, dict) else None
            if row is None:
                bad += 1
            else:
                rows.append(row.to_json())
        return rows, bad

    # -- files -----------------------------------------------------------------------------------------
    def figures(self) -> list[Path]:
        return image_files(self.path / layout.FIGURES, self.path)

    def checkpoint(self, which: str = layout.LAST, tag: str = "") -> Path:
        return self.own(layout.checkpoint_path(self.path, which, tag))


def image_files(folder: Path, owner: Path) -> list[Path]:
    """Image files below ``folder`` that stay inside ``owner`` (a run or study folder), sorted: no hidden
    files (temporary ones among them), nothing through a linked folder, nothing a link leads out of ``owner``."""
    if not folder.is_dir() or not is_inside(folder, owner):
        return []
    found = []
    for parent, folders, files in os.walk(folder):  # does not follow links to folders
        folders.sort()
        found += [Path(parent) / name for name in files
                  if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith(".")]  # nor temporary files
    return sorted(path for path in found if path.is_file() and is_inside(path, owner))


def links_out(folder: Path, owner: Path) -> list[Path]:
    """Image files below ``folder`` that a symbolic link leads out of ``owner`` (for a reader's warning)."""
    if not folder.is_dir():
        return []
    return sorted(Path(parent) / name for parent, _, files in os.walk(folder) for name in files
                  if Path(name).suffix.lower() in IMAGE_SUFFIXES and not is_inside(Path(parent) / name, owner))

"""``<file>.json`` beside every export: which run and checkpoint it came from, and what was
checked (a :class:`~torchclassics.rundir.records.ExportRecord`; the previous release's format 0
is read too).

It is also how an export knows its own files: an output file, or a sidecar, that is not a record
of an export of the same run belongs to someone else and is never replaced without ``force``.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..core import files, jsonfile
from ..core.errors import UserError
from ..rundir.records import ExportRecord

MAX_SIDECAR_BYTES = 1 << 20  # ours are a few hundred bytes
CHECKPOINTS = ("best", "last")


def sidecar_of(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def run_identity(run_path) -> str:
    """How a sidecar names its run: the folder's absolute path, links resolved."""
    return str(Path(run_path).resolve())


def read(path: Path, formats=()) -> ExportRecord | None:
    """The export record beside ``path``, or None when there is none, or what is there is not one of
    ours: not a regular file of its own (a symbolic link), not JSON, or not naming a run, a checkpoint
    and (when ``formats`` are given) one of them."""
    sidecar = sidecar_of(path)
    if os.path.islink(sidecar) or not sidecar.is_file():
        return None
    try:
        record = ExportRecord.from_json(jsonfile.read_object(sidecar, MAX_SIDECAR_BYTES))
    except UserError:
        return None
    known = not formats or record.export_format in formats
    return record if record.run and record.checkpoint in CHECKPOINTS and known else None


def write(path: Path, run_path, checkpoint_name: str, fmt: str, details: dict) -> Path:
    record = ExportRecord(run=run_identity(run_path), checkpoint=checkpoint_name, export_format=fmt, details=details)
    return files.write_json(sidecar_of(path), record.to_json())


def check_target(path: Path, run_path, force: bool, formats=()) -> None:
    """Refuse to write ``path`` and its sidecar over anything but an earlier export of this run (unless
    ``force``): a file of the user's at either name, or an export of another run. A folder is refused
    even with ``force``: nothing is removed to make room."""
    sidecar = sidecar_of(path)
    for name in (path, sidecar):
        if name.is_dir() and not name.is_symlink():
            raise UserError.for_option("output", str(path), f"{name} is a folder; give a file name such as "
                                       f"{path / 'model.onnx' if name == path else path.with_suffix('.onnx')}.")
    if force or not (os.path.lexists(path) or os.path.lexists(sidecar)):
        return
    record = read(path, formats)
    if record is None and os.path.lexists(sidecar):
        raise UserError.for_option("output", str(path), f"{sidecar} exists and is not the record of an export (it "
                                   "is written beside every export); choose another {output}, or add {force} to "
                                   "replace it.")
    if record is None:
        raise UserError.for_option("output", str(path), f"exists and is not an export of {run_path}; choose another "
                                   "{output}, or add {force} to replace it.")
    if os.path.lexists(path) and record.run != run_identity(run_path):  # (a record alone describes nothing left)
        raise UserError.for_option("output", str(path), f"is an export of {record.run}, not of {run_path}; choose "
                                   "another {output}, or add {force} to replace it.")

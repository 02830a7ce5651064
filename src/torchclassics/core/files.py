"""Files written so that a reader, a crash or a full disk leaves the old file or the new one, never
half, and so that a planted symbolic link never redirects a write.

Every file torchclassics writes (parameters, summaries, rewritten rows, checkpoints,
figures, GIFs, reports, exports) goes through :func:`replaced_atomically`: the content is written
to a new temporary file in the same folder, named ``.torchclassics.<name>.<random>.tmp<suffix>``,
flushed, then renamed over the target. A rename replaces a symbolic link itself, never the file
it points to. A write that fails removes its temporary file and raises an OSError naming the
target; one killed mid-write leaves a temporary file that :func:`remove_leftovers` deletes the
next time the folder is used. Only names with that prefix are ever deleted: a user's own
``.backup.tmp`` is not ours.

Files that grow (a run's rows and log) are opened by :func:`open_append`, which refuses a
symbolic link (``O_NOFOLLOW``).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

TEMP_PREFIX = ".torchclassics."
TEMP_SUFFIX = ".tmp"
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@contextlib.contextmanager
def replaced_atomically(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """``with replaced_atomically(path) as tmp:`` write ``tmp``; on success it replaces ``path``.

    The temporary name keeps the target's suffix, so writers that pick a format from the file
    name (matplotlib, Pillow, torch.onnx) still can."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.stem}.", suffix=f"{TEMP_SUFFIX}{path.suffix}",
                                dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, mode)  # mkstemp makes 0600; run files are for every reader
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def write_bytes(path: str | Path, data: bytes) -> Path:
    with replaced_atomically(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def open_append(path: str | Path) -> IO[str]:
    """``path`` opened to append text; an OSError (ELOOP) if it is a symbolic link, so a link planted
    in a run folder never gets our lines appended to the file it points to."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "a", encoding="utf-8")  # the file object owns the descriptor from here: closed once


def is_leftover(path: Path) -> bool:
    """A temporary file of :func:`replaced_atomically` whose writer died."""
    name = path.name
    return name.startswith(TEMP_PREFIX) and (name.endswith(TEMP_SUFFIX) or f"{TEMP_SUFFIX}." in name)


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Delete the temporary files that killed writes left in ``folder`` and below (not through
    symbolic links). Call it only while holding the folder (a run directory's lock): a live
    writer's temporary file looks the same."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for parent, _folders, files in os.walk(folder):  # os.walk does not follow links to folders
        for name in files:
            path = Path(parent) / name
            if is_leftover(path) and path.is_file() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, symbolic links resolved, lies in ``folder`` (resolved too)."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def real_folder(path: Path) -> bool:
    """A folder that is not a symbolic link (or not there yet)."""
    return not os.path.lexists(path) or (path.is_dir() and not path.is_symlink())

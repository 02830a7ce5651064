"""Files written so that a reader, a crash or a full disk leaves the old file or the new one, never half.

Every file torchclassics writes (params.json, summary.json, metrics rewrites, checkpoints,
figures, GIFs, reports, exports) goes through :func:`replaced_atomically`: the content is
written to a hidden temporary file in the same folder (``.<name>.<random>.tmp``), flushed,
then renamed over the target. A write that fails removes its temporary file and raises an
OSError naming the target, not the temporary file; one killed mid-write leaves a
``.*.tmp`` file that :func:`remove_leftovers` deletes the next time the folder is used.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def replaced_atomically(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """``with replaced_atomically(path) as tmp:`` write ``tmp``; on success it replaces ``path``.

    The temporary name (``.<stem>.<random>.tmp<suffix>``) keeps the target's suffix, so writers
    that pick a format from the file name (matplotlib, Pillow, torch.onnx) still can."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{TEMP_SUFFIX}{path.suffix}", dir=path.parent)
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


def is_leftover(path: Path) -> bool:
    """A temporary file of :func:`replaced_atomically` whose writer died."""
    name = path.name
    return name.startswith(".") and (name.endswith(TEMP_SUFFIX) or f"{TEMP_SUFFIX}." in name)


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Delete the temporary files that killed writes left in ``folder`` and below.

    Call it only while holding the folder (the run directory's lock): a live writer's
    temporary file looks the same."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.rglob(".*"):
        if path.is_file() and not path.is_symlink() and is_leftover(path):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed

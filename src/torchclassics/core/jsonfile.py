"""JSON objects read from files a user or another program wrote, defensively.

A file is read only if it is a regular file (a FIFO would block for ever, a device never end)
no larger than a limit; its JSON may not nest deeper than :data:`MAX_DEPTH` nor name a key
twice in one object (JSON allows it and takes the last; a typo in a params file would then
win silently). Every failure is a UserError naming the file and the problem.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .errors import UserError

MAX_DEPTH = 64


class DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    seen = set()
    for key in keys:
        if key in seen:
            raise DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def _depth(value, limit: int) -> int:
    """Nesting depth of ``value``, counting no further than ``limit + 1``."""
    if limit < 0 or not isinstance(value, (dict, list)):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(item, limit - 1) for item in items), default=0)


def read_bytes(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; a UserError otherwise."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO opens at once, to be refused
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}.") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UserError(f"{path} is a folder, not a file.")
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{path} is not a regular file (a FIFO, socket or device); give a file.")
        if info.st_size > max_bytes:
            raise UserError(f"{path} is {info.st_size:,} bytes; a file here may hold at most {max_bytes:,}.")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 16):
            total += len(chunk)
            if total > max_bytes:  # grew while read
                raise UserError(f"{path} holds more than {max_bytes:,} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}.") from None
    finally:
        os.close(fd)


def loads_object(text: str, where: str) -> dict:
    """The JSON object in ``text``; a UserError naming ``where`` and what is wrong."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except DuplicateKey as err:
        raise UserError(f"{where} names the key {str(err)!r} twice in one object; keep one.") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{where} is not valid JSON: {err.msg} at line {err.lineno}.") from None
    except RecursionError:
        raise UserError(f"{where} nests deeper than {MAX_DEPTH} levels.") from None
    except ValueError as err:  # an integer of thousands of digits (Python's limit on converting them)
        raise UserError(f"{where} holds a number too long to read ({err}).") from None
    if not isinstance(data, dict):
        raise UserError(f"{where} holds a JSON {type(data).__name__}, not an object.")
    if _depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise UserError(f"{where} nests deeper than {MAX_DEPTH} levels.")
    return data


def read_object(path: str | Path, max_bytes: int) -> dict:
    """The JSON object in ``path`` (see the module's rules)."""
    data = read_bytes(path, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"cannot read {path}: not UTF-8 text ({err.reason} at byte {err.start}).") from None
    return loads_object(text, str(path))

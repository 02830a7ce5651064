"""Text from outside (file names, run names, values in a run's files) made safe to show."""
from __future__ import annotations

import os
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` as it can be written in UTF-8 and shown on a terminal: a file name's undecodable bytes
    escaped (``bad\\xff``), text that is not Unicode (a lone surrogate) escaped, and control characters
    (a newline that would make one line two, a terminal escape sequence) written as ``\\x1b``."""
    try:
        text = os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def as_typed(path) -> str:
    """``path`` as a user types it here, to be copied into a command: relative below the current folder,
    else absolute (not quoted: the caller quotes the whole command's words)."""
    from pathlib import Path

    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except (OSError, ValueError):
        return str(path)

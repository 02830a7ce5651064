"""The files the results commands write (results.md, the report page), which never replace a file a
user owns.

Each such file begins with a stamp line naming the command and the SHA-256 of everything after it:

    <!-- torchclassics synthesize output; sha256 of what follows: 3f2a... -->

A file that exists is replaced only when it is our own earlier output: its stamp names the same
command and its digest still matches (a user who wrote notes into results.md made it theirs), or
when the caller says ``force``. A symbolic link or anything that is not a regular file is not ours.
Nothing is ever written into a run's record (its params, summary, metrics, ... or its checkpoints,
figures, ...) nor over a search study's journal or best parameters, not even with ``force``: a run that
lost its params.json is no run any more.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

from ..core import files
from ..core.errors import UserError
from ..rundir import layout
from ..rundir.reader import RunFolder

SYNTHESIZE, REPORT = "synthesize", "report"
PREFIXES = {SYNTHESIZE: "", REPORT: "<!DOCTYPE html>"}  # a page's doctype stays first: no quirks mode
STAMP = re.compile(r"<!-- torchclassics (\w+) output; sha256 of what follows: ([0-9a-f]{64}) -->")
MAX_STAMP = 256
# The files of a run's record (the folders it writes into are layout.RUN_FOLDERS), and of a search study's.
RECORD_FILES = (layout.PARAMS, layout.METRICS, layout.SUMMARY, layout.TRIAL, layout.LOG, layout.LOCK)
STUDY_FILES = (layout.JOURNAL, layout.BEST_PARAMS)
WHAT = {SYNTHESIZE: "a results.md that torchclassics synthesize wrote", REPORT: "a report that torchclassics wrote"}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stamped(command: str, body: str) -> str:
    """``body`` behind its stamp line."""
    return f"{PREFIXES[command]}<!-- torchclassics {command} output; sha256 of what follows: " \
           f"{_digest(body.encode('utf-8'))} -->\n{body}"


def body_of(text: str) -> str:
    """What follows the stamp line (the whole text when it has none)."""
    first, newline, rest = text.partition("\n")
    return rest if newline and STAMP.search(first) else text


def is_own(path: Path, command: str) -> bool:
    """Whether ``path`` is a regular file that ``command`` wrote and nobody changed since. Reads its first
    line, then hashes the rest in blocks (a report of thousands of runs is large, and read once)."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            return False
        with open(path, "rb") as handle:
            first = handle.readline(MAX_STAMP + len(PREFIXES[command]))
            match = STAMP.fullmatch(first.decode("utf-8", "replace").rstrip("\n").removeprefix(PREFIXES[command]))
            if match is None or match.group(1) != command:
                return False
            digest = hashlib.sha256()
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError:
        return False
    return digest.hexdigest() == match.group(2)


def record_holding(path: Path) -> Path | None:
    """The run directory (or search study) whose record ``path`` would be part of: a record file, or anything
    in a run's checkpoints, figures, ... folders; None when it is not. Folders are resolved: a link to a run's
    folder leads into its record too."""
    parent = path.parent.resolve()
    if path.name in RECORD_FILES and RunFolder(parent).is_run:
        return parent
    if path.name in STUDY_FILES and any(os.path.lexists(parent / name) for name in STUDY_FILES):
        return parent
    target = parent / path.name
    for folder in target.parents:
        inside = target.relative_to(folder).parts
        if len(inside) > 1 and inside[0] in layout.RUN_FOLDERS and RunFolder(folder).is_run:
            return folder
    return None


def check_target(path: Path, command: str, force: bool, option: str | None = None) -> None:
    """Refuse to write ``path`` when it is part of a run's record (even with ``force``), or an existing file
    that is not ``command``'s own output (unless ``force``). ``option`` is the API argument that named it."""
    def refused(reason: str) -> UserError:
        if option is not None:
            return UserError.for_option(option, str(path), reason)
        return UserError(f"{path} {reason}")

    owner = record_holding(path)
    if owner is not None:
        raise refused(f"is part of the record of {owner}; torchclassics never writes into a run's record, not even "
                      "with {force}: choose a file outside it.")
    if os.path.isdir(path) and not os.path.islink(path):
        raise refused("is a folder; " + (f"give a file name such as {Path(path) / layout.REPORT}." if command == REPORT
                                         else "synthesize writes its tables to a file of that name: move it away."))
    if not os.path.lexists(path) or force or is_own(path, command):
        return
    another = f"choose another {{{option}}}, " if option else ""  # {output}: the caller's name for the option
    raise refused(f"exists and is not {WHAT[command]} (or was changed since); it was left as it is. Move it away, "
                  f"{another}or add {{force}} to replace it.")


def write(path: Path, command: str, body: str) -> Path:
    """Write ``body`` behind its stamp, atomically (a reader sees the old file or the new one)."""
    return files.write_text(path, stamped(command, body))

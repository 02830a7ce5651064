"""Every message torchclassics writes for a person goes through one logger, ``torchclassics``.

Kinds, chosen by the function that logs them:

* :func:`progress`: training lines (``epoch 3/200 | ...``), shown as they are;
* :func:`status`: what a command is doing (``torchclassics: drawing figures ...``);
* :func:`note`: something worth knowing that changes nothing (``torchclassics: note: ...``);
* :func:`warn`: something went wrong but the command goes on (``torchclassics: warning: ...``).

Errors are not logged: they are raised, and the CLI prints them as one line. Nothing is shown
until :func:`console` attaches the stderr handler (the CLI and the Python API's entry points do):
an application that configured ``logging`` itself gets the records instead. :func:`shown` with
``quiet`` (the CLI's ``-q``) keeps errors only for one command; :func:`silenced_progress`
(``run(quiet=True)``, search trials) drops progress and status lines in its block only.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator

from .text import printable

LOGGER = logging.getLogger("torchclassics")
PROGRESS, STATUS, NOTE = "progress", "status", "note"
_local = threading.local()


def progress(message: str) -> None:
    LOGGER.info(message, extra={"kind": PROGRESS})


def status(message: str) -> None:
    LOGGER.info(message, extra={"kind": STATUS})


def note(message: str) -> None:
    LOGGER.info(message, extra={"kind": NOTE})


def warn(message: str) -> None:
    LOGGER.warning(message)


_NOTED: set[str] = set()


def note_once(message: str) -> None:
    """A note said once per process, however often its cause is met (a plugin skipped, say)."""
    if message not in _NOTED:
        _NOTED.add(message)
        note(message)


def progress_silenced() -> bool:
    return getattr(_local, "silenced", False)


@contextlib.contextmanager
def silenced_progress(enabled: bool = True) -> Iterator[None]:
    """Drop progress and status lines logged by this thread inside the block."""
    before = progress_silenced()
    _local.silenced = enabled or before
    try:
        yield
    finally:
        _local.silenced = before


class Console(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (a test's capture, a notebook's stream)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # a closed stream must not turn a message into a crash
            self.handleError(record)

    def filter(self, record: logging.LogRecord) -> bool:
        kind = getattr(record, "kind", None)
        return not (kind in (PROGRESS, STATUS) and progress_silenced())


class ConsoleFormat(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = printable(record.getMessage())  # one record, one line, no terminal escapes
        kind = getattr(record, "kind", None)
        if kind == PROGRESS:
            return message
        if kind == STATUS:
            return f"torchclassics: {message}"
        if kind == NOTE:
            return f"torchclassics: note: {message}"
        return f"torchclassics: {record.levelname.lower()}: {message}"


def console() -> Console | None:
    """Show messages on stderr (the handler is attached once per process); None when the application
    routes our records itself."""
    handler = next((h for h in LOGGER.handlers if isinstance(h, Console)), None)
    if handler is None and not LOGGER.handlers:
        handler = Console()
        handler.setFormatter(ConsoleFormat())
        handler.setLevel(logging.INFO)
        LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.INFO)
        LOGGER.propagate = False
    return handler


@contextlib.contextmanager
def shown(quiet: bool) -> Iterator[None]:
    """Inside the block, stderr shows everything (``quiet`` False) or errors only (True); the level
    before comes back after it (one command's ``-q`` never silences the next call in the process)."""
    handler = console()
    if handler is None:
        yield
        return
    before = handler.level
    handler.setLevel(logging.ERROR if quiet else logging.INFO)
    try:
        yield
    finally:
        handler.setLevel(before)

"""Ctrl-C while a command starts: held until the start is over, then honoured.

Importing torch, matplotlib and the rest takes seconds, and a KeyboardInterrupt raised in the middle
of an import is not always a clean stop: one library swallows it and the run goes on (exit 0), another
turns it into a RuntimeError with a traceback. The command line therefore holds SIGINT from its start
(:func:`held`), and the run lets it through (:func:`honour`) once everything is imported and built,
just before anything is trained or written: a Ctrl-C pressed meanwhile then stops the command there,
cleanly (exit 130, nothing written). During training it acts at once, as always.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_pressed = threading.Event()


def _hold(signum, frame) -> None:
    _pressed.set()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """SIGINT held in this block (main thread only); the handler before is put back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pressed.clear()
    before = signal.signal(signal.SIGINT, _hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def honour() -> None:
    """Let Ctrl-C through from here on, raising the KeyboardInterrupt of one pressed meanwhile. Nothing
    happens where SIGINT was not held (a notebook's own handler stays)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not _hold:
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if _pressed.is_set():
        _pressed.clear()
        raise KeyboardInterrupt

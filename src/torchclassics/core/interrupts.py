"""Ctrl-C while a command starts: held until the start is over, then honoured.

Importing torch, matplotlib and the rest takes seconds, and a KeyboardInterrupt raised in the middle
of an import is not always a clean stop: one library swallows it and the run goes on (exit 0), another
turns it into a RuntimeError with a traceback. The command line therefore holds SIGINT from its start
(:func:`held`), and the run lets it through (:func:`honour`) once everything is imported and built,
just before anything is trained or written: a Ctrl-C pressed meanwhile then stops the command there,
cleanly (exit 130, nothing written). During training it acts at once, as always; SIGTERM (a job
scheduler's stop, ``kill``) then acts as Ctrl-C does (:class:`Terminated`), and a run stopped either way
raises :class:`Interrupted`, which says where the run is and how to continue it.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_pressed = threading.Event()
_terminate_before = None  # SIGTERM's handler before honour() replaced it (None: not replaced)


class Terminated(KeyboardInterrupt):
    """SIGTERM during training: stops the run as Ctrl-C does (checkpoints stay valid)."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM once it had written its folder: where it is, its last saved
    epoch (0: none saved yet, resuming starts it again; None: not known here) and which model, for a run of several."""

    def __init__(self, experiment: str, run_dir, saved_epoch: int | None, epochs: int, tag: str = "",
                 terminated: bool = False):
        self.experiment, self.run_dir, self.saved_epoch, self.epochs = experiment, run_dir, saved_epoch, epochs
        self.tag, self.terminated = tag, terminated
        super().__init__(f"{self.what()}; run({experiment!r}, out={str(run_dir)!r}, resume=True) continues it.")

    def what(self, where: str | None = None) -> str:
        """``interrupted: runs/x holds epoch 6 of 20``: the run folder (as ``where`` shows it) and its last
        saved epoch."""
        where = where or str(self.run_dir)
        how = "terminated" if self.terminated else "interrupted"
        model = f" ({self.tag})" if self.tag else ""
        if self.saved_epoch is None:
            return f"{how}: {where} (its checkpoints/last.pt holds the last saved epoch)"
        if not self.saved_epoch:
            return f"{how}: {where} has no saved epoch yet{model}"
        return f"{how}: {where} holds epoch {self.saved_epoch} of {self.epochs}{model}"


def _terminate(signum, frame) -> None:
    raise Terminated


def _hold(signum, frame) -> None:
    _pressed.set()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """SIGINT held in this block (main thread only); the handler before is put back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _terminate_before
    _pressed.clear()
    before = signal.signal(signal.SIGINT, _hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        if _terminate_before is not None:
            signal.signal(signal.SIGTERM, _terminate_before)
            _terminate_before = None


def honour(terminate: bool = False) -> None:
    """Let Ctrl-C through from here on, raising the KeyboardInterrupt of one pressed meanwhile. Nothing
    happens where SIGINT was not held (a notebook's own handler stays). With ``terminate`` (a run), SIGTERM
    stops the command as Ctrl-C does from here on (before, its default ends the process: nothing was
    written yet)."""
    global _terminate_before
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not _hold:
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if terminate and _terminate_before is None and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        _terminate_before = signal.signal(signal.SIGTERM, _terminate)
    if _pressed.is_set():
        _pressed.clear()
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until this block ends, then act as they would have (main thread only): a
    checkpoint is written and recorded as written together, so an interrupted run names the epoch it
    really holds."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    waiting = {sig: handler for sig, handler in before.items() if callable(handler)}
    for sig in waiting:
        signal.signal(sig, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        for sig, handler in waiting.items():
            signal.signal(sig, handler)
        if arrived:
            waiting[arrived[0]](arrived[0], None)

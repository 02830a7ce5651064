"""What a user sees while a run works: epoch lines with their rate and ETA (a bar on a terminal),
and phases that say what takes time.

Not on a terminal (a log file, a notebook, CI), training writes lines in the spirit of the lessons'
scripts: ``epoch 3/200 | step 300 | train mse 0.0123 | test mse 0.0101 | 0.4 s | 750 steps/s | ETA 2.1 s``:
the first and last epoch, and between them one line every :data:`LINE_SECONDS` at most; while a
long epoch runs, a step line at least every :data:`QUIET_SECONDS`. On a terminal a tqdm bar shows
the steps (the epochs where an epoch's steps are not known beforehand, as a DQN's episodes) and about
twenty epoch lines scroll above it. train.log gets those twenty lines whatever stderr is. Everything
shown goes through the ``torchclassics`` logger (core/messages.py); ``quiet`` silences progress and
phases in its block.

No torch here: phases wrap work in any layer (data loading, figures, t-SNE, GIFs).
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

from .core import messages
from .rundir.metrics import BOOKKEEPING, split_of

LINES_PER_RUN = 20     # epoch lines for a run in train.log and above a terminal's bar, about
LINE_SECONDS = 3.0     # off a terminal: at most one epoch line this often (the first and last always)
QUIET_SECONDS = 5.0    # off a terminal: a line at least this often while a long epoch runs
ANNOUNCE_AFTER = 1.0   # a phase says so once it has taken this long; so does each part of it
MEASURED_SECONDS = 0.5  # an ETA from less work than this would be noise (the first step warms everything up)

quiet = messages.silenced_progress  # ``with quiet(): ...`` silences progress lines and phases


def is_quiet() -> bool:
    """Progress silenced in this block, or a process other than rank 0 under torchrun (rank 0 speaks for all)."""
    return messages.progress_silenced() or os.environ.get("RANK", "0") != "0"


_parts = threading.local()  # the phase now running in this thread: when its last part ended


@contextlib.contextmanager
def phase(what: str) -> Iterator[None]:
    """A slow step announces itself once it has run for a second ("drawing figures ...") and
    its time when it ends; a fast one stays silent. Its parts (each figure) say so with :func:`part_done`."""
    if is_quiet():
        yield
        return
    started = time.perf_counter()
    announced = threading.Event()

    def announce():
        announced.set()
        messages.status(f"{what} ...")

    timer = threading.Timer(ANNOUNCE_AFTER, announce)
    timer.daemon = True
    timer.start()
    outer = getattr(_parts, "mark", None)
    _parts.mark = started
    try:
        yield
    finally:
        timer.cancel()
        _parts.mark = outer
        if announced.is_set():
            messages.status(f"{what}: done in {duration(time.perf_counter() - started)}")


def part_done(what: str) -> None:
    """One part of the running phase is done (``loss.png``): named with its time when it took a second or
    more, so a long phase shows where its time goes."""
    mark = getattr(_parts, "mark", None)
    if mark is None or is_quiet():
        return
    now = time.perf_counter()
    _parts.mark = now
    if now - mark >= ANNOUNCE_AFTER:
        messages.status(f"  {what} ({duration(now - mark)})")


def duration(seconds: float) -> str:
    """``0.4 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _rate(steps: float, seconds: float) -> str:
    per_second = steps / seconds if seconds > 0 else 0.0
    return f"{per_second:.3g} steps/s" if per_second >= 1 or per_second == 0 else f"{seconds / steps:.3g} s/step"


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def row_line(row: dict, epochs: int, elapsed: float, pace: str = "") -> str:
    """``epoch 3/200 | step 300 | train mse 0.0123 | test mse 0.0101 | 0.4 s`` (then ``pace``, the rate and
    ETA, if given)."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"step {row['step']}"]
    for key, value in row.items():
        if key in BOOKKEEPING or not isinstance(value, (int, float)):
            continue
        split, rest = split_of(key)
        parts.append(f"{split} {rest} {_number(value)}" if split else f"train {key} {_number(value)}")
    parts.append(duration(elapsed))
    if pace:
        parts.append(pace)
    line = " | ".join(parts)
    return f"[{row['tag']}] {line}" if row.get("tag") else line


class Progress:
    """Epoch lines (and a bar on a terminal) for one Trainer; ``log`` (train.log) receives the epoch lines."""

    def __init__(self, epochs: int, first_epoch: int, steps_per_epoch: int, log: Callable[[str], None],
                 label: str = "", enabled: bool = True):
        self.epochs, self.first_epoch, self.log = epochs, first_epoch, log
        self.steps_per_epoch = steps_per_epoch
        self.enabled = enabled and not is_quiet()
        self.every = max(1, -(-epochs // LINES_PER_RUN))
        self.started = time.perf_counter()
        self.last_line = self.started
        self.steps = 0  # steps of this session (a resumed run counts from its checkpoint)
        self.warm: tuple[float, int, int] | None = None  # time, steps, epoch after the first epoch (its warm-up)
        self.bar = None
        if self.enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            # steps when an epoch's are known; else epochs (a DQN's episodes end when the pole falls)
            self.bar_counts_epochs = not steps_per_epoch
            total = epochs - first_epoch if self.bar_counts_epochs else (epochs - first_epoch) * steps_per_epoch
            self.bar = tqdm(total=total, desc=label or None, unit="epoch" if self.bar_counts_epochs else "step",
                            leave=False, dynamic_ncols=True)

    def _show(self, line: str) -> None:
        self.last_line = time.perf_counter()
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            messages.progress(line)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def since(self) -> tuple[float, int, int]:
        """Seconds, steps and epochs to measure the pace by: since the first epoch's end once later steps ran
        (the first epoch warms caches and allocators up), else since the start."""
        now = time.perf_counter()
        if self.warm is not None and self.steps > self.warm[1]:
            return now - self.warm[0], self.steps - self.warm[1], self.warm[2]
        return now - self.started, self.steps, self.first_epoch

    def eta(self, epoch: int, step_in_epoch: int = 0) -> str:
        """The time left at this session's pace: by steps where an epoch's are known, else by epochs."""
        seconds, steps, from_epoch = self.since()
        if seconds < MEASURED_SECONDS:
            return ""
        if self.steps_per_epoch and steps:
            left = (self.epochs - epoch) * self.steps_per_epoch + (self.steps_per_epoch - step_in_epoch
                                                                  if step_in_epoch else 0)
            return duration(left * seconds / steps)
        done = epoch - from_epoch - (1 if step_in_epoch else 0)
        return duration((self.epochs - epoch + (1 if step_in_epoch else 0)) * seconds / done) if done > 0 else ""

    def pace(self, epoch: int, step_in_epoch: int = 0) -> str:
        """``750 steps/s | ETA 2.1 s`` (no ETA once the last epoch is done)."""
        seconds, steps, _ = self.since()
        parts = [_rate(steps, seconds)] if steps else []
        eta = self.eta(epoch, step_in_epoch) if epoch < self.epochs or step_in_epoch else ""
        if eta:
            parts.append(f"ETA {eta}")
        return " | ".join(parts)

    def step(self, epoch: int, step_in_epoch: int, loss: Callable[[], float]) -> None:
        """After each step: the bar moves; without one, a line if the epoch has been silent too long.
        ``loss`` is called only then (it may copy from a GPU)."""
        self.steps += 1
        if self.bar is not None:
            if not self.bar_counts_epochs:
                self.bar.update(1)
        elif self.enabled and time.perf_counter() - self.last_line >= QUIET_SECONDS:
            of = f"/{self.steps_per_epoch}" if self.steps_per_epoch else ""
            self._show(f"epoch {epoch}/{self.epochs} | step {step_in_epoch}{of} of the epoch | "
                       f"train loss {_number(loss())} | {duration(self.elapsed())} | {self.pace(epoch, step_in_epoch)}")

    def epoch(self, row: dict) -> None:
        epoch = row["epoch"]
        ends = epoch == self.first_epoch + 1 or epoch == self.epochs
        logged = ends or epoch % self.every == 0
        line = row_line(row, self.epochs, self.elapsed(), self.pace(epoch)) if logged or self.enabled else ""
        if logged:
            self.log(line)
        if self.warm is None:
            self.warm = (time.perf_counter(), self.steps, epoch)
        if self.bar is not None and self.bar_counts_epochs:
            self.bar.update(1)
        if not self.enabled:
            return
        if self.bar is not None:
            if logged:
                self._show(line)
        elif ends or time.perf_counter() - self.last_line >= LINE_SECONDS:
            self._show(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

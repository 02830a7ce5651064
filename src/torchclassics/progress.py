"""What a user sees while a run works: a line per epoch (a bar on a terminal), phases that say so.

Not on a terminal (a log file, a notebook, CI), training writes lines in the spirit of the
lessons' scripts: ``epoch 3/200 | step 300 | train mse 0.0123 | test mse 0.0101 | 0.4 s``, about
twenty of them per run (first, last and evenly between), plus one every
:data:`QUIET_SECONDS` of a long epoch. On a terminal a tqdm bar shows the steps and the same
lines scroll above it. The lines also go to the run's train.log. Everything shown goes through the
``torchclassics`` logger (core/messages.py); ``quiet`` silences progress and phases in its block.

No torch here: phases wrap work in any layer (data loading, figures, t-SNE, GIFs).
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator

from .core import messages
from .rundir.metrics import BOOKKEEPING, split_of

LINES_PER_RUN = 20     # epoch lines for a run, about
QUIET_SECONDS = 10.0   # longest silence while an epoch runs
ANNOUNCE_AFTER = 1.0   # a phase says so once it has taken this long

quiet = messages.silenced_progress  # ``with quiet(): ...`` silences progress lines and phases


def is_quiet() -> bool:
    return messages.progress_silenced()


@contextlib.contextmanager
def phase(what: str) -> Iterator[None]:
    """A slow step announces itself once it has run for a second ("drawing figures ...") and
    its time when it ends; a fast one stays silent."""
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
    try:
        yield
    finally:
        timer.cancel()
        if announced.is_set():
            messages.status(f"{what}: done in {time.perf_counter() - started:.1f} s")


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def row_line(row: dict, epochs: int, elapsed: float) -> str:
    """``epoch 3/200 | step 300 | train mse 0.0123 | test mse 0.0101 | 0.4 s``."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"step {row['step']}"]
    for key, value in row.items():
        if key in BOOKKEEPING or not isinstance(value, (int, float)):
            continue
        split, rest = split_of(key)
        parts.append(f"{split} {rest} {_number(value)}" if split else f"train {key} {_number(value)}")
    parts.append(f"{elapsed:.1f} s")
    line = " | ".join(parts)
    return f"[{row['tag']}] {line}" if row.get("tag") else line


class Progress:
    """Epoch lines (and a bar on a terminal) for one Trainer; ``log`` also receives every line."""

    def __init__(self, epochs: int, first_epoch: int, steps_per_epoch: int, log: Callable[[str], None],
                 label: str = "", enabled: bool = True):
        self.epochs, self.log = epochs, log
        self.steps_per_epoch = steps_per_epoch
        self.enabled = enabled and not is_quiet()
        self.every = max(1, -(-epochs // LINES_PER_RUN))
        self.started = time.perf_counter()
        self.last_line = self.started
        self.bar = None
        if self.enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=(epochs - first_epoch) * steps_per_epoch or None, desc=label or None, unit="step",
                            leave=False, dynamic_ncols=True)

    def _emit(self, line: str, to_log: bool = True) -> None:
        self.last_line = time.perf_counter()
        if to_log:
            self.log(line)
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            messages.progress(line)

    def step(self, epoch: int, step_in_epoch: int, loss: Callable[[], float]) -> None:
        """After each step: the bar moves; without one, a line if the epoch has been silent too long.
        ``loss`` is called only then (it may copy from a GPU)."""
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled and time.perf_counter() - self.last_line >= QUIET_SECONDS:
            of = f"/{self.steps_per_epoch}" if self.steps_per_epoch else ""
            self._emit(f"epoch {epoch}/{self.epochs} | step {step_in_epoch}{of} of the epoch | "
                       f"train loss {_number(loss())} | {time.perf_counter() - self.started:.1f} s", to_log=False)

    def epoch(self, row: dict) -> None:
        epoch = row["epoch"]
        due = epoch == 1 or epoch == self.epochs or epoch % self.every == 0
        if due or time.perf_counter() - self.last_line >= QUIET_SECONDS:
            self._emit(row_line(row, self.epochs, time.perf_counter() - self.started))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

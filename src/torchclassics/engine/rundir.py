"""The run directory: the contract every reader (evaluate, synthesize, report, search) relies on.

    params.json  metrics.jsonl  summary.json  train.log  checkpoints/  figures/

One process writes a run directory at a time: it holds ``.lock`` (an advisory lock that
dies with the process; a second writer is refused with the holder's process id). Nothing
is written until every check has passed (:meth:`RunDir.begin`), so a command that fails
before training leaves the folder as it was; every file is replaced atomically.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import socket
import sys
import time
from pathlib import Path

from .. import atomic
from ..errors import UserError

LOCK_NAME = ".lock"


def runs_root(runs_dir: str | Path | None = None) -> Path:
    return Path(runs_dir or os.environ.get("TORCHCLASSICS_RUNS") or "runs")


def checkpoint_interval() -> float:
    """Seconds between two checkpoints: ``$TORCHCLASSICS_CHECKPOINT_SECONDS`` (default 2)."""
    raw = os.environ.get("TORCHCLASSICS_CHECKPOINT_SECONDS", "2")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise UserError(f"TORCHCLASSICS_CHECKPOINT_SECONDS={raw!r}: must be a number of seconds >= 0 "
                        "(0 writes a checkpoint every epoch).")
    return seconds


def versions() -> dict:
    import numpy
    import torch

    found = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    for name in ("torchvision", "torchclassics"):
        try:
            found[name] = __import__(name).__version__
        except Exception:  # an optional package: its absence is not an error
            pass
    return found


def read_metrics(run_path: Path) -> tuple[list[dict], int]:
    """The rows of ``run_path/metrics.jsonl`` and how many lines could not be read: a run
    killed in the middle of a write leaves a torn last line, which costs that line only."""
    file = Path(run_path) / "metrics.jsonl"
    if not file.is_file():
        return [], 0
    rows, bad = [], 0
    for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


class QuietFileHandler(logging.FileHandler):
    """train.log: a line that cannot be written (a full disk) is dropped without logging's own
    traceback; the run's next write of its files reports the problem, once, with the path."""

    def handleError(self, record) -> None:
        pass


# -- the lock ----------------------------------------------------------------------------------
class RunLock:
    """An exclusive advisory lock on ``<run>/.lock``, released by the kernel when the process
    ends (SIGKILL included), so a stale lock of a dead process is simply taken over."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self.fd: int | None = None
        self.made_file = False

    def acquire(self) -> None:
        self.made_file = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            holder = _read_holder(fd)
            os.close(fd)
            raise UserError(f"{self.path.parent} is in use by {holder}: one process writes a run directory at a "
                            "time. Wait for it to finish (or stop it), then try again.")
        self.fd = fd
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": " ".join(sys.argv[:4])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None


def _try_lock(fd: int) -> bool:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _read_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        holder = {}
    if not holder.get("pid"):
        return "another process"
    return f"process {holder['pid']} on {holder.get('host', '?')} (since {holder.get('since', '?')}: {holder.get('command', '')})"


# -- making a new one ---------------------------------------------------------------------------
def new_run_path(experiment: str, runs_dir=None) -> Path:
    """``<runs root>/<experiment>/<timestamp>``, created here: ``os.mkdir`` is atomic, so two runs
    started in the same second get two folders (``-2``, ``-3``, ...), never one."""
    parent = runs_root(runs_dir) / experiment
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        path = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise UserError(f"{parent}: cannot find a free run name for {stamp}; remove some runs or give --out.")


class RunDir:
    """One run's folder. Only the writing process (rank 0) creates files in it."""

    def __init__(self, path: Path, writer: bool = True):
        self.path = Path(path)
        self.writer = writer
        self.checkpoints = self.path / "checkpoints"
        self.figures = self.path / "figures"
        self.lock = RunLock(self.path)
        self.planned: dict = {}  # the params.json that begin() writes
        self.started = False
        self.created = False     # this process made the folder (it goes again if the run never starts)
        self.log = logging.getLogger(f"torchclassics.run.{id(self)}")
        self.log.propagate = False
        self.log.setLevel(logging.INFO)

    @classmethod
    def existing(cls, path) -> "RunDir":
        path = Path(path)
        if not (path / "params.json").is_file():
            raise UserError(f"{path} is not a run directory (no params.json). Give a folder made by `torchclassics run`.")
        return cls(path, writer=False)

    # -- before anything is written --------------------------------------------------------------
    def claim(self, resume: bool) -> None:
        """Lock the folder for this process (creating it for a new run) and check it may be used:
        a new run refuses a folder that holds files; a resumed one needs a run to continue."""
        if not self.writer:
            return  # under DDP rank 0 checks and writes
        if resume and not self.path.is_dir():
            raise UserError(f"--resume: {self.path} does not exist; run without --resume to start it.")
        if not self.path.exists():
            self.path.mkdir(parents=True)
            self.created = True
        self.lock.acquire()
        if not resume and self.holds_run_data():
            self.lock.release()
            raise UserError(f"{self.path} already holds a run; choose a new --out, or add --resume to continue it.")

    def holds_run_data(self) -> bool:
        """Anything but the lock, empty folders and leftovers of killed writes."""
        for path in self.path.rglob("*"):
            if path.is_file() and path.name != LOCK_NAME and not atomic.is_leftover(path):
                return True
        return False

    def saved_params(self) -> dict | None:
        """The run's own params.json; None when a run was killed before writing it (it restarts)."""
        if not (self.path / "params.json").is_file():
            if self.holds_run_data():
                raise UserError(f"--resume: {self.path} has no params.json but holds other files; it is not a "
                                "torchclassics run directory.")
            return None
        return self.params()

    # -- the first write ---------------------------------------------------------------------------
    def begin(self) -> None:
        """Every check has passed: clean what killed writes left, write params.json (``self.planned``:
        when new or changed, e.g. a resume with more epochs), open train.log. Once, by the writer."""
        if not self.writer or self.started:
            return
        params = self.planned
        self.started = True
        atomic.remove_leftovers(self.path)
        self.figures.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        if not (self.path / "params.json").is_file() or self.params() != params:
            atomic.write_json(self.path / "params.json", params)
        handler = QuietFileHandler(self.path / "train.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.log.addHandler(handler)

    def params(self) -> dict:
        from ..config import read_json

        return read_json(self.path / "params.json")

    def info(self, message: str, echo: bool = False) -> None:
        if self.writer:
            self.log.info(message)
            if echo:
                print(message, file=sys.stderr, flush=True)

    def append_metrics(self, row: dict) -> None:
        if not self.writer:
            return
        path = self.path / "metrics.jsonl"
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
        except OSError as err:  # a full disk says so without a file name: add it
            raise OSError(err.errno, err.strerror or str(err), str(path)) from None

    def truncate_metrics(self, after_epoch: int, tag: str = "") -> None:
        """On resume, drop the rows of ``tag`` logged after the checkpoint (the killed run got
        further); with no checkpoint (``after_epoch`` 0) every row of ``tag`` goes."""
        if not self.writer or not (self.path / "metrics.jsonl").exists():
            return
        kept = [row for row in self.metrics() if row.get("tag", "") != tag or row.get("epoch", 0) <= after_epoch]
        text = "".join(json.dumps(row) + "\n" for row in kept)  # torn lines go too
        if text != (self.path / "metrics.jsonl").read_text(encoding="utf-8", errors="replace"):
            atomic.write_text(self.path / "metrics.jsonl", text)

    def metrics(self) -> list[dict]:
        return read_metrics(self.path)[0]

    def write_summary(self, summary: dict) -> None:
        if self.writer:
            atomic.write_json(self.path / "summary.json", summary)

    def close(self) -> None:
        """Release the folder. A run that failed before its first write leaves it as it found it:
        its lock file goes (removed while still held, so no one else can be holding it), and a
        folder it made goes too."""
        for handler in list(self.log.handlers):
            handler.close()
            self.log.removeHandler(handler)
        if not self.started and self.lock.fd is not None and self.lock.made_file:
            self.lock.path.unlink(missing_ok=True)
        self.lock.release()
        if not self.started and self.created:
            with contextlib.suppress(OSError):  # not empty after all: leave it
                self.path.rmdir()

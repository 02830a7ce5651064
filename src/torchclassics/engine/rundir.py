"""The run directory: the contract every reader (evaluate, synthesize, report, search) relies on.

    params.json  metrics.jsonl  summary.json  train.log  checkpoints/  figures/
"""
from __future__ import annotations

import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from ..errors import UserError


def runs_root(runs_dir: str | Path | None = None) -> Path:
    return Path(runs_dir or os.environ.get("TORCHCLASSICS_RUNS") or "runs")


def new_run_path(experiment: str, runs_dir=None) -> Path:
    """``<runs root>/<experiment>/<timestamp>``, made unique if two start in the same second."""
    base = runs_root(runs_dir) / experiment / time.strftime("%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def write_text_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half: temp file beside it, then os.replace."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; run files are for every reader
    os.replace(tmp, path)


def write_json_atomic(path: Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


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


class RunDir:
    """One run's folder. Only the writing process (rank 0) creates files in it."""

    def __init__(self, path: Path, writer: bool = True):
        self.path = Path(path)
        self.writer = writer
        self.checkpoints = self.path / "checkpoints"
        self.figures = self.path / "figures"
        self.log = logging.getLogger(f"torchclassics.run.{id(self)}")
        self.log.propagate = False
        self.log.setLevel(logging.INFO)

    @classmethod
    def existing(cls, path) -> "RunDir":
        path = Path(path)
        if not (path / "params.json").is_file():
            raise UserError(f"{path} is not a run directory (no params.json). Give a folder made by `torchclassics run`.")
        return cls(path, writer=False)

    def prepare(self, params: dict, resume: bool) -> None:
        """Create the folder for a new run, or check it for a resumed one.

        A new run refuses a folder that already holds a run, so nothing is overwritten."""
        if not self.writer:
            return  # under DDP rank 0 checks and writes; the others may see its files already
        if resume:
            if not (self.path / "params.json").is_file():
                raise UserError(f"--resume: {self.path} holds no run to resume (no params.json).")
        elif self.path.exists() and any(self.path.iterdir()):
            raise UserError(f"{self.path} already holds files; choose a new --out, or add --resume to continue it.")
        self.figures.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        if not resume or self.params() != params:  # a resume may extend epochs
            write_json_atomic(self.path / "params.json", params)
        handler = logging.FileHandler(self.path / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.log.addHandler(handler)

    def params(self) -> dict:
        from ..config import read_json

        return read_json(self.path / "params.json")

    def info(self, message: str, echo: bool = False) -> None:
        if self.writer:
            self.log.info(message)
            if echo:
                print(message, file=sys.stderr)

    def append_metrics(self, row: dict) -> None:
        if self.writer:
            with open(self.path / "metrics.jsonl", "a") as handle:
                handle.write(json.dumps(row) + "\n")

    def truncate_metrics(self, after_epoch: int, tag: str = "") -> None:
        """On resume, drop the rows of ``tag`` logged after the checkpoint (the killed run got further)."""
        if not self.writer or not (self.path / "metrics.jsonl").exists():
            return
        kept = [row for row in self.metrics() if row.get("tag", "") != tag or row.get("epoch", 0) <= after_epoch]
        write_text_atomic(self.path / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in kept))

    def metrics(self) -> list[dict]:
        return read_metrics(self.path)[0]

    def write_summary(self, summary: dict) -> None:
        if self.writer:
            write_json_atomic(self.path / "summary.json", summary)

    def close(self) -> None:
        for handler in list(self.log.handlers):
            handler.close()
            self.log.removeHandler(handler)

"""What several test modules share: the command line in a subprocess, a run's metrics rows, a kill
at a known row, and the kill-then-resume comparison. Import it as ``from helpers import ...``
(pytest puts tests/ on sys.path, as it does for conftest.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TIMEOUT_S = 180


def cli(*args, env=None, **kwargs) -> subprocess.CompletedProcess:
    """``python -m torchclassics ARGS`` to its end, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "torchclassics", *args], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=env, **kwargs)


def start(*args, env=None) -> subprocess.Popen:
    """``python -m torchclassics ARGS`` started, not waited for."""
    return subprocess.Popen([sys.executable, "-m", "torchclassics", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(run: Path) -> list[dict]:
    """The rows of a run's metrics.jsonl ([] before it exists)."""
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def comparable(run: Path) -> list[dict]:
    """A run's rows without their timings: what a resumed run must share with an uninterrupted one."""
    return [{k: v for k, v in row.items() if k != "train_s"} for row in rows(run)]


def rows_written(run: Path) -> int:
    """Complete rows of metrics.jsonl so far; a row being written (no newline yet) does not count."""
    try:
        return (run / "metrics.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_after(proc: subprocess.Popen, out: Path, n_rows: int) -> None:
    """SIGKILL ``proc`` once ``out/metrics.jsonl`` holds ``n_rows`` complete rows: the checkpoint of the
    epoch before is on disk then (an epoch's row is written before its checkpoint). Fails, rather
    than testing nothing, if the process ends before the kill lands."""
    deadline = time.monotonic() + TIMEOUT_S
    while rows_written(out) < n_rows:
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {n_rows} rows in {out} after {TIMEOUT_S} s"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, f"the run ended by itself before the kill: {proc.communicate()}"


def one_line_error(stderr: str) -> str:
    """The one error line of a refused command (progress lines of a run before it may precede it)."""
    errors = [line for line in stderr.splitlines() if line.startswith("torchclassics: error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def as_sets(settings: dict) -> list[str]:
    """``{"epochs": 3}`` -> ``["--set", "epochs=3"]`` (JSON for numbers, lists and booleans)."""
    return [a for key, value in settings.items()
            for a in ("--set", f"{key}={value if isinstance(value, str) else json.dumps(value)}")]


def killed_and_resumed(tmp_path: Path, monkeypatch, name: str, settings: dict, kill_at: int):
    """An uninterrupted run and a run SIGKILLed once ``kill_at`` rows are logged (a subprocess),
    then resumed with --resume: asserts their metrics.jsonl rows and final metrics are equal and
    returns both results for the caller's own checks. The uninterrupted and the resumed runs stay
    in this process (torch is imported once); every epoch is checkpointed."""
    from torchclassics import run

    monkeypatch.setenv("TORCHCLASSICS_CHECKPOINT_SECONDS", "0")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    expected = run(name, out=whole, figures=False, quiet=True, **settings)
    proc = start("run", name, "--out", str(killed), "--no-figures", *as_sets(settings), env=dict(os.environ))
    kill_after(proc, killed, kill_at)
    assert not (killed / "summary.json").exists(), "killed before the end"
    got = run(name, out=killed, resume=True, figures=False, quiet=True)
    assert got.summary["resumed_from_epoch"] >= 1
    assert comparable(killed) == comparable(whole)
    assert got.metrics == pytest.approx(expected.metrics, abs=1e-6)
    return expected, got

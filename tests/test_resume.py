"""Fault test: a run killed with SIGKILL mid-training and resumed ends exactly where the
uninterrupted run ends (CPU, same seed)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TIMEOUT_S = 120


def start(name, out, *args, env):
    return subprocess.Popen([sys.executable, "-m", "torchclassics", "run", name, "--out", str(out), "--no-figures", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def kill_after(proc, out: Path, n_rows: int) -> None:
    """SIGKILL once ``n_rows`` epochs are logged: the checkpoint of the epoch before is on disk
    then (an epoch's row is written before its checkpoint)."""
    deadline = time.monotonic() + TIMEOUT_S
    while len(rows(out)) < n_rows:
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def comparable(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "train_s"}


def as_sets(settings: dict) -> list[str]:
    """``{"epochs": 3}`` -> ``["--set", "epochs=3"]`` (JSON for numbers, lists and booleans)."""
    return [a for key, value in settings.items()
            for a in ("--set", f"{key}={value if isinstance(value, str) else json.dumps(value)}")]


def killed_and_resumed(tmp_path, monkeypatch, name: str, settings: dict, kill_at: int):
    """An uninterrupted run and a run SIGKILLed once ``kill_at`` rows are logged (a subprocess),
    then resumed with --resume: asserts their metrics.jsonl rows and final metrics are equal and
    returns both results for the caller's own checks. The uninterrupted and the resumed runs stay
    in this process (torch is imported once); every epoch is checkpointed."""
    from torchclassics import run

    monkeypatch.setenv("TORCHCLASSICS_CHECKPOINT_SECONDS", "0")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    expected = run(name, out=whole, figures=False, quiet=True, **settings)
    kill_after(start(name, killed, *as_sets(settings), env=dict(os.environ)), killed, kill_at)
    assert not (killed / "summary.json").exists(), "killed before the end"
    got = run(name, out=killed, resume=True, figures=False, quiet=True)
    assert got.summary["resumed_from_epoch"] >= 1
    assert [comparable(r) for r in rows(killed)] == [comparable(r) for r in rows(whole)]
    assert got.metrics == pytest.approx(expected.metrics, abs=1e-6)
    return expected, got


@pytest.mark.parametrize("name, settings, kill_at", [
    # Adam + cosine schedule + hidden state carried across windows
    ("rnn_sincos", {"epochs": 6, "scheduler": {"name": "CosineAnnealingLR", "T_max": 6}}, 2),
    # several models in one run, one checkpoint folder each; row 5 is Adam's 2nd epoch
    ("optimizers", {"epochs": 3, "optimizers": ["SGD", "Adam"]}, 5),
])
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, monkeypatch, name, settings, kill_at):
    killed_and_resumed(tmp_path, monkeypatch, name, settings, kill_at)


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    from torchclassics import run

    first = run("regression", out=tmp_path / "r", epochs=5, figures=False)
    again = run("regression", out=tmp_path / "r", epochs=5, figures=False, resume=True)
    assert again.metrics == first.metrics
    assert len(rows(tmp_path / "r")) == 5


def test_resume_can_extend_epochs(tmp_path):
    from torchclassics import run

    run("regression", out=tmp_path / "r", epochs=5, figures=False)
    longer = run("regression", out=tmp_path / "r", epochs=8, figures=False, resume=True)
    straight = run("regression", out=tmp_path / "s", epochs=8, figures=False)
    assert longer.metrics == pytest.approx(straight.metrics, abs=1e-6)
    assert len(rows(tmp_path / "r")) == 8


def test_resume_survives_a_torn_metrics_line_and_records_new_epochs(tmp_path):
    from torchclassics import run

    run("regression", out=tmp_path / "r", epochs=3, figures=False)
    with open(tmp_path / "r" / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 4, "ste')  # what a kill in the middle of a write leaves
    run("regression", out=tmp_path / "r", epochs=5, figures=False, resume=True)
    assert [row["epoch"] for row in rows(tmp_path / "r")] == [1, 2, 3, 4, 5]
    assert json.loads((tmp_path / "r" / "params.json").read_text())["epochs"] == 5

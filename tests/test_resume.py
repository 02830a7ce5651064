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


@pytest.mark.parametrize("name, args, kill_at", [
    # Adam + cosine schedule + hidden state carried across windows
    ("rnn_sincos", ["--set", "epochs=6", "--set", "scheduler.T_max=6"], 2),
    # several models in one run, one checkpoint folder each; row 5 is Adam's 2nd epoch
    ("optimizers", ["--set", "epochs=3", "--set", "optimizers=SGD,Adam"], 5),
])
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, name, args, kill_at):
    env = {**os.environ, "TORCHCLASSICS_CHECKPOINT_SECONDS": "0"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run([sys.executable, "-m", "torchclassics", "run", name, "--out", str(whole), "--no-figures", *args],
                   env=env, check=True, capture_output=True, timeout=TIMEOUT_S)

    proc = start(name, killed, *args, env=env)
    kill_after(proc, killed, kill_at)
    assert not (killed / "summary.json").exists(), "killed before the end"
    done = subprocess.run([sys.executable, "-m", "torchclassics", "run", name, "--out", str(killed), "--resume", "--no-figures"],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stderr

    expected = json.loads((whole / "summary.json").read_text())
    got = json.loads((killed / "summary.json").read_text())
    assert got["resumed_from_epoch"] >= 1
    assert got["metrics"].keys() == expected["metrics"].keys()
    for key, value in expected["metrics"].items():
        assert got["metrics"][key] == pytest.approx(value, abs=1e-6), key
    assert [comparable(r) for r in rows(killed)] == [comparable(r) for r in rows(whole)]


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

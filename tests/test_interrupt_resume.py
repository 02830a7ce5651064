"""Interrupt and resume as a user meets them: Ctrl-C or SIGTERM ends with one line naming the run
folder, its last saved epoch and the command that continues it; that command, copied as it is, ends
where an uninterrupted run ends; ``--resume`` on a complete run says so and touches nothing."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from helpers import TIMEOUT_S, comparable, rows_written

SETTINGS = ["--set", "epochs=400", "--no-figures"]


def _started(out, env) -> subprocess.Popen:
    """``torchclassics run regression`` with Ctrl-C at its default (pytest's runner may ignore it)."""
    return subprocess.Popen([sys.executable, "-m", "torchclassics", "run", "regression", "--out", str(out), *SETTINGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=out.parent,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _stopped_after(proc: subprocess.Popen, out, rows: int, how: int) -> str:
    deadline = time.monotonic() + TIMEOUT_S
    while rows_written(out) < rows:
        assert proc.poll() is None, f"the run ended before it could be stopped: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(how)
    _, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == (130 if how == signal.SIGINT else 143), err
    assert "Traceback" not in err, err
    return err


@pytest.mark.integration
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_run_names_the_command_that_continues_it_exactly(tmp_path, how):
    from torchclassics import run

    env = {**os.environ, "TORCHCLASSICS_CHECKPOINT_SECONDS": "0"}
    whole = run("regression", out=tmp_path / "whole", epochs=400, figures=False, quiet=True)
    out = tmp_path / "stopped"
    err = _stopped_after(_started(out, env), out, 5, how)
    last = err.strip().splitlines()[-1]
    word = "interrupted" if how == signal.SIGINT else "terminated"
    assert last.startswith(f"torchclassics: {word}: stopped holds epoch "), err
    saved = int(last.split(" holds epoch ")[1].split()[0])
    assert saved >= 4 and " of 400" in last  # row 5 is written just before its checkpoint
    command = last.split("continue with: ")[1]
    assert command == "torchclassics run regression --out stopped --resume"
    argv = shlex.split(command)
    done = subprocess.run([sys.executable, "-m", "torchclassics", *argv[1:]], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert f"resumed training at epoch {saved}" in done.stderr
    assert comparable(out) == comparable(tmp_path / "whole")
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"] == pytest.approx(whole.metrics, abs=1e-6)


@pytest.mark.integration
def test_resume_of_a_complete_run_says_so_and_touches_nothing(tmp_path):
    from torchclassics import run

    out = tmp_path / "r"
    first = run("regression", out=out, epochs=5, quiet=True)
    written = sorted(p for p in out.rglob("*") if p.is_file() and p.name != ".lock")  # the lock is taken again
    assert any(p.parent.name == "figures" for p in written)
    times = {p: p.stat().st_mtime_ns for p in written}
    started = time.perf_counter()
    again = run("regression", out=out, resume=True, quiet=True)
    assert time.perf_counter() - started < 1.0
    assert again.complete_already and again.metrics == first.metrics
    assert {p: p.stat().st_mtime_ns for p in written} == times
    assert again.model is not None  # read from the checkpoint when asked for


@pytest.mark.integration
def test_resume_of_a_complete_run_from_the_command_line_exits_0(tmp_path):
    from helpers import cli

    out = tmp_path / "r"
    assert cli("run", "regression", "--out", str(out), "--set", "epochs=3", "--no-figures").returncode == 0
    times = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    done = cli("run", "regression", "--out", str(out), "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "is complete (3 epochs)" in done.stdout
    assert "torchclassics run regression --out r --resume --set epochs=6" in done.stdout
    assert {p: p.stat().st_mtime_ns for p in times} == times
    longer = cli("run", "regression", "--out", str(out), "--resume", "--set", "epochs=5", "--no-figures")
    assert longer.returncode == 0 and "resumed training at epoch 3" in longer.stderr, longer.stderr


@pytest.mark.integration
def test_a_complete_run_whose_params_json_was_edited_is_checked_not_called_complete(tmp_path, capsys):
    import json

    from torchclassics.cli import main

    out = tmp_path / "r"
    assert main(["run", "regression", "--out", str(out), "--set", "epochs=3", "--no-figures", "-q"]) == 0
    params = json.loads((out / "params.json").read_text())
    (out / "params.json").write_text(json.dumps({**params, "hidden": 11}))
    capsys.readouterr()
    assert main(["run", "regression", "--out", str(out), "--resume", "-q"]) == 2
    assert "hidden 10 -> 11" in capsys.readouterr().err

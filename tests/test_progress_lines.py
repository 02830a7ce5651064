"""Progress off a terminal (a log file, CI, a notebook): lines with the epoch, step, rate and ETA, never
too many and never a long silence; on a terminal, a bar with a total even where an epoch's steps are
not known beforehand (a DQN's episodes)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest

from torchclassics import progress


def _stamped_stderr(argv: list[str], env: dict, cwd) -> tuple[list[tuple[float, str]], int]:
    """Each stderr line of the command with the seconds since its start, read as it comes through a pipe."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    lines: list[tuple[float, str]] = []

    def read():
        for line in proc.stderr:
            lines.append((time.monotonic() - started, line.rstrip("\n")))

    reader = threading.Thread(target=read)
    reader.start()
    proc.stdout.read()
    code = proc.wait(timeout=300)
    reader.join()
    lines.append((time.monotonic() - started, "<exit>"))
    return lines, code


@pytest.mark.integration
def test_a_run_logged_to_a_file_shows_an_eta_soon_and_never_falls_silent(tmp_path):
    env = {**os.environ, "TORCHCLASSICS_CHECKPOINT_SECONDS": "0"}  # a checkpoint every epoch: a slower run
    lines, code = _stamped_stderr([sys.executable, "-m", "torchclassics", "run", "regression", "--out", "r",
                                   "--no-figures", "--set", "epochs=1000"], env, tmp_path)
    assert code == 0, lines
    eta = [at for at, line in lines if re.search(r"\| [\d.e+]+ steps/s \| ETA \d", line)]
    assert eta and eta[0] < 10, lines
    moments = [0.0] + [at for at, _ in lines]
    assert max(b - a for a, b in zip(moments, moments[1:])) <= 10, lines
    epoch_lines = [at for at, line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) <= 2 + (epoch_lines[-1] - epoch_lines[0]) / progress.LINE_SECONDS + 1, lines
    assert any(line.startswith("epoch 1000/1000 | step 1000 |") for _, line in lines)


def test_epoch_lines_carry_the_rate_and_the_time_left(monkeypatch):
    clock = iter(range(0, 1000))  # one second per reading
    monkeypatch.setattr(progress.time, "perf_counter", lambda: float(next(clock)))
    shown, logged = [], []
    monkeypatch.setattr(progress.messages, "progress", shown.append)
    bar = progress.Progress(10, 0, 4, logged.append, enabled=True)
    bar.bar = None  # off a terminal
    for epoch in range(1, 11):
        for step in range(1, 5):
            bar.step(epoch, step, lambda: 0.5)
        bar.epoch({"epoch": epoch, "step": 4 * epoch, "loss": 0.5})
    assert shown[0].startswith("epoch 1/10 | step 4 | train loss 0.5 |")
    assert re.search(r"\| [\d.]+ s/step \| ETA \d+ min \d\d s$", shown[1]) or "ETA" in shown[1], shown
    assert shown[-1].startswith("epoch 10/10 | step 40 |") and "ETA" not in shown[-1]
    assert len(logged) == 10  # train.log: every epoch of a 10-epoch run


def test_a_bar_has_a_total_where_an_epochs_steps_are_unknown(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = progress.Progress(7, 2, 0, lambda line: None)  # a DQN resumed at episode block 2: epochs are counted
    try:
        assert bar.bar is not None and bar.bar.total == 5 and bar.bar.unit == "epoch"
        bar.epoch({"epoch": 3, "step": 40, "return": 9.0})
        assert bar.bar.n == 1
    finally:
        bar.close()


def test_a_slow_part_of_a_phase_is_named_with_its_time(monkeypatch):
    said = []
    monkeypatch.setattr(progress.messages, "status", said.append)
    with progress.phase("drawing figures"):
        progress.part_done("fast.png")
        time.sleep(progress.ANNOUNCE_AFTER + 0.1)
        progress.part_done("slow.png")
    assert [line for line in said if ".png" in line] == [said[1]] and said[1].startswith("  slow.png (")

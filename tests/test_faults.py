"""The fault suite: interrupted, concurrent and malformed paths end exact, or with one clear line
and the run directory as it was. Extend it with a case per new way of breaking things.

Each test states the promise it checks:
* a killed run resumed with --resume ends with the rows of an uninterrupted one (any kill point);
* one writer per run directory; fresh run names never collide;
* a refused command exits 2 with one line and leaves the run directory byte-identical;
* checkpoints that are not ours are never unpickled; ones that do not fit are refused in one line.
"""
import contextlib
import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

from helpers import TIMEOUT_S, cli, comparable, kill_after, one_line_error, rows, start
from torchclassics.cli import main

# Kill points (rows of metrics.jsonl) per experiment; TORCHCLASSICS_FAULT_TRIALS=20 for the thorough run.
TRIALS = int(os.environ.get("TORCHCLASSICS_FAULT_TRIALS", "2"))


def snapshot(run: Path) -> dict:
    """Every file of a run directory but its lock, as bytes."""
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != ".lock"}


# -- kills ------------------------------------------------------------------------------------------
KILLED = {
    # tiny and fast: kills land before the first checkpoint, between checkpoints, and during writes
    "regression": ["--set", "epochs=3000", "--set", "gif_frames=5"],
    # several models in one run: kills also land between the sub-runs
    "optimizers": ["--set", "epochs=4", "--set", "optimizers=SGD,Adam,RMSprop", "--set", "n_points=2000"],
    # Adam + cosine schedule + hidden state carried across windows
    "rnn_sincos": ["--set", "epochs=12", "--set", "scheduler.T_max=12"],
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Each experiment run once without a kill: what every resumed run must end with."""
    root = tmp_path_factory.mktemp("whole")
    for name, args in KILLED.items():
        cli("run", name, "--out", str(root / name), "--no-figures", *args, check=True)
    return {name: root / name for name in KILLED}


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(KILLED))
@pytest.mark.parametrize("trial", range(TRIALS))
def test_sigkill_after_a_seeded_row_then_resume_is_exact(tmp_path, uninterrupted, name, trial):
    """The kill lands once a seeded number of rows is written (never after the run's end: the test
    fails rather than skip a kill): before the first checkpoint, between checkpoints, during one."""
    whole = uninterrupted[name]
    kill_at = random.Random(f"{name}-{trial}").randint(1, int(len(rows(whole)) * 0.8))
    killed = tmp_path / "killed"
    kill_after(start("run", name, "--out", str(killed), "--no-figures", *KILLED[name]), killed, kill_at)
    resumed = cli("run", name, "--out", str(killed), "--resume", "--no-figures")
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(killed) == comparable(whole), f"killed after row {kill_at}"
    expected = json.loads((whole / "summary.json").read_text())["metrics"]
    assert json.loads((killed / "summary.json").read_text())["metrics"] == pytest.approx(expected, abs=1e-6)
    assert not [p for p in killed.rglob(".*") if p.name != ".lock"], "leftovers of killed writes remain"


def test_resume_of_a_run_directory_that_was_never_made_is_one_line(tmp_path, capsys):
    """A kill before the run directory existed leaves nothing to resume: said in one line."""
    assert main(["run", "regression", "--out", str(tmp_path / "never"), "--resume", "--no-figures"]) == 2
    assert "does not exist" in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "never").exists()


def test_killed_before_the_first_checkpoint_restarts_cleanly(tmp_path):
    """No last.pt yet: the rows the killed run wrote go, training starts over, nothing is doubled."""
    from torchclassics import run

    out = tmp_path / "r"
    whole = run("regression", out=tmp_path / "whole", epochs=30, figures=False)
    run("regression", out=out, epochs=30, figures=False)
    shutil.rmtree(out / "checkpoints")  # what a kill before the first checkpoint leaves: rows, no last.pt
    (out / "summary.json").unlink()
    resumed = run("regression", out=out, figures=False, resume=True)
    assert comparable(out) == comparable(tmp_path / "whole")
    assert resumed.metrics == whole.metrics and resumed.summary["resumed_from_epoch"] == 0


def test_killed_while_writing_params_json_restarts_and_cleans_up(tmp_path):
    out = tmp_path / "r"
    (out / "checkpoints").mkdir(parents=True)
    (out / ".torchclassics.params.a1b2.tmp.json").write_text('{"half')  # a kill in the middle of the first write
    (out / "checkpoints" / ".torchclassics.last.x9.tmp.pt").write_bytes(b"half")
    assert main(["run", "regression", "--out", str(out), "--resume", "--no-figures", "--set", "epochs=3"]) == 0
    assert len(rows(out)) == 3 and (out / "params.json").is_file()
    assert not list(out.rglob("*.tmp*")), "leftovers of killed writes are removed"


def test_resume_with_fewer_epochs_than_done_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "regression", "--out", str(out), "--set", "epochs=5", "--no-figures"]) == 0
    before = snapshot(out)
    assert main(["run", "regression", "--out", str(out), "--resume", "--set", "epochs=3"]) == 2
    assert "has already trained 5 epochs" in one_line_error(capsys.readouterr().err)
    assert snapshot(out) == before


# -- writers --------------------------------------------------------------------------------------
@pytest.mark.integration
def test_a_second_writer_is_refused_while_the_first_lives(tmp_path):
    out = tmp_path / "r"
    env = {**os.environ, "TORCHCLASSICS_CHECKPOINT_SECONDS": "0.2"}
    first = start("run", "regression", "--out", str(out), "--no-figures", "--set", "epochs=8000", env=env)
    deadline = time.monotonic() + TIMEOUT_S
    while not (out / "checkpoints" / "last.pt").exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = cli("run", "regression", "--out", str(out), "--resume", "--no-figures", env=env)
    assert second.returncode == 2
    assert f"in use by process {first.pid}" in one_line_error(second.stderr)
    assert first.wait(timeout=TIMEOUT_S) == 0, first.communicate()
    assert [row["epoch"] for row in rows(out)] == list(range(1, 8001))  # one writer: nothing interleaved


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    out = tmp_path / "r"
    assert main(["run", "regression", "--out", str(out), "--set", "epochs=3", "--no-figures"]) == 0
    (out / ".lock").write_text(json.dumps({"pid": 999999, "host": "gone"}))  # left by a SIGKILLed run
    assert main(["run", "regression", "--out", str(out), "--resume", "--set", "epochs=4", "--no-figures"]) == 0
    assert len(rows(out)) == 4


@pytest.mark.integration
def test_simultaneous_runs_into_one_root_get_distinct_folders(tmp_path):
    env = {**os.environ, "TORCHCLASSICS_RUNS": str(tmp_path / "runs")}
    procs = [start("run", "regression", "--no-figures", "--quiet", "--set", "epochs=5", env=env) for _ in range(5)]
    outputs = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, outputs
    folders = sorted((tmp_path / "runs" / "regression").iterdir())
    assert len(folders) == 5 and all((f / "summary.json").is_file() for f in folders)


# -- refused commands leave the run as it was ---------------------------------------------------------
@pytest.fixture
def finished(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "regression", "--out", str(out), "--set", "epochs=3", "--no-figures"]) == 0
    return out


@pytest.mark.parametrize("args, expected", [
    (["run", "regression", "--set", "epochs=3"], "already holds a run"),
    (["run", "regression", "--resume", "--set", "lr=0.5"], "only epochs may change, not lr"),
    (["run", "regression", "--resume", "--params", "x.json"], "leave --params out"),
    (["run", "classification", "--resume"], "'regression' experiment, not 'classification'"),
    (["run", "regression", "--resume", "--set", "epochs=-1"], "epochs=-1: must be >= 1"),
    (["run", "regression", "--resume", "--set", "epochs=2"], "has already trained 3 epochs"),
])
def test_refused_commands_leave_the_run_byte_identical(finished, capsys, args, expected):
    before = snapshot(finished)
    assert main([*args, "--out", str(finished)]) == 2
    assert expected in one_line_error(capsys.readouterr().err)
    assert snapshot(finished) == before


def test_an_edited_params_json_is_checked_on_resume(finished, capsys):
    params = json.loads((finished / "params.json").read_text())
    (finished / "params.json").write_text(json.dumps({**params, "lr": "fast", "epochs": 6}))
    before = snapshot(finished)
    assert main(["run", "regression", "--out", str(finished), "--resume"]) == 2
    assert 'params.json: lr="fast": expected a number' in one_line_error(capsys.readouterr().err)
    assert snapshot(finished) == before


def test_a_changed_model_size_on_resume_is_refused(finished, capsys):
    params = json.loads((finished / "params.json").read_text())
    (finished / "params.json").write_text(json.dumps({**params, "hidden": 11, "epochs": 6}))
    before = snapshot(finished)
    assert main(["run", "regression", "--out", str(finished), "--resume"]) == 2
    assert "was trained with other parameters than the run's params.json now says (hidden 10 -> 11)" \
        in one_line_error(capsys.readouterr().err)
    assert snapshot(finished) == before


def test_a_bad_checkpoint_interval_is_one_line(finished, capsys, monkeypatch):
    monkeypatch.setenv("TORCHCLASSICS_CHECKPOINT_SECONDS", "soon")
    before = snapshot(finished)
    assert main(["run", "regression", "--out", str(finished), "--resume", "--set", "epochs=5"]) == 2
    assert "TORCHCLASSICS_CHECKPOINT_SECONDS='soon'" in one_line_error(capsys.readouterr().err)
    assert snapshot(finished) == before


# -- checkpoints that are not ours --------------------------------------------------------------------
class Payload:
    """Unpickling this runs a command that leaves a marker file: it must never happen."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def hostile_checkpoints(folder: Path, marker: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    made = {"pickle": folder / "pickle.pt", "tensor": folder / "tensor.pt", "junk": folder / "junk.pt",
            "empty": folder / "empty.pt"}
    torch.save({"model": {}, "payload": Payload(marker)}, made["pickle"])
    torch.save(torch.ones(3), made["tensor"])
    made["junk"].write_bytes(b"\x80\x04not a checkpoint at all")
    made["empty"].write_bytes(b"")
    return made


@pytest.mark.parametrize("kind, expected", [
    ("pickle", "will not be unpickled"), ("tensor", "no model weights"),
    ("junk", "damaged checkpoint"), ("empty", "damaged checkpoint"),
])
@pytest.mark.parametrize("command", ["evaluate", "export", "resume"])
def test_foreign_checkpoints_are_refused_by_every_command(finished, tmp_path, capsys, kind, expected, command):
    marker = tmp_path / "PWNED"
    bad = hostile_checkpoints(tmp_path / "bad", marker)[kind]
    for name in ("best.pt", "last.pt"):
        shutil.copyfile(bad, finished / "checkpoints" / name)
    before = snapshot(finished)
    args = {"evaluate": ["evaluate", str(finished)],
            "export": ["export", str(finished), "--format", "torchscript"],
            "resume": ["run", "regression", "--out", str(finished), "--resume", "--set", "epochs=5"]}[command]
    assert main(args) == 2
    assert expected in one_line_error(capsys.readouterr().err)
    assert not marker.exists(), "a pickle was executed"
    assert snapshot(finished) == before


def test_another_experiments_checkpoint_is_refused(finished, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["run", "classification", "--out", str(other), "--set", "epochs=2", "--no-figures"]) == 0
    shutil.copyfile(other / "checkpoints" / "best.pt", finished / "checkpoints" / "best.pt")
    assert main(["evaluate", str(finished)]) == 2
    assert "does not fit a regression model" in one_line_error(capsys.readouterr().err)


def test_export_never_overwrites_a_file_that_is_not_its_own(finished, tmp_path, capsys):
    precious = tmp_path / "thesis.ts"
    precious.write_text("my thesis")
    assert main(["export", str(finished), "--format", "torchscript", "-o", str(precious)]) == 2
    assert "is not an export of" in one_line_error(capsys.readouterr().err)
    assert precious.read_text() == "my thesis"
    assert main(["export", str(finished), "--format", "torchscript", "-o", str(precious), "--force"]) == 0
    assert precious.read_bytes() != b"my thesis"
    # an export of the same run may be replaced by the next one
    assert main(["export", str(finished), "--format", "torchscript", "-o", str(precious)]) == 0


# -- the disk fills up ------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (root only: CI runs as root; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.mark.integration
def test_a_disk_full_before_the_lock_leaves_nothing_and_names_the_path(small_disk):
    with open(small_disk / "filler", "wb") as filler:  # every byte taken
        with contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
    out = small_disk / "run"
    proc = cli("run", "regression", "--out", str(out), "--set", "epochs=3")
    line = one_line_error(proc.stderr)
    assert proc.returncode == 2 and "No space left on device" in line and str(out) in line
    assert not out.exists(), "the folder this run made is gone, with its lock"


@pytest.mark.integration
def test_a_full_disk_is_one_line_naming_the_path(small_disk):
    (small_disk / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 200_000))  # leave ~200 kB
    out = small_disk / "run"
    proc = cli("run", "regression", "--out", str(out), "--set", "epochs=400", "--set", "hidden=2000")
    assert proc.returncode == 2, proc.stderr
    line = [text for text in proc.stderr.splitlines() if text.startswith("torchclassics: error")]
    assert len(line) == 1 and "No space left on device" in line[0] and str(out) in line[0]
    assert "Traceback" not in proc.stderr
    assert not [p for p in out.rglob(".*") if p.name != ".lock"], "no temporary file left behind"
    (small_disk / "filler").unlink()
    resumed = cli("run", "regression", "--out", str(out), "--resume", "--no-figures")
    assert resumed.returncode == 0, resumed.stderr
    assert [row["epoch"] for row in rows(out)] == list(range(1, 401))

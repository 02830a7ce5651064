"""Reliability, third round (issue 22): the same seed gives the same numbers on a busy machine; nothing
outside a run is touched through a link planted in it; a damaged or tampered checkpoint is one line
with nothing changed; a user's files are never deleted; every value is checked before anything is
written. Each case failed on the release before this one."""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from helpers import as_sets, kill_after, start
from torchclassics import run
from torchclassics.cli import main
from torchclassics.engine import state

REGRESSION = {"epochs": 5, "gif_frames": 2}


def one_error(capsys) -> str:
    """The one error line of a refused command, and no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("torchclassics: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != ".lock"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished regression run (every epoch checkpointed), trained once for the module."""
    out = tmp_path_factory.mktemp("trained") / "run"
    os.environ["TORCHCLASSICS_CHECKPOINT_SECONDS"] = "0"
    try:
        run("regression", out=out, quiet=True, **REGRESSION)
    finally:
        del os.environ["TORCHCLASSICS_CHECKPOINT_SECONDS"]
    return out


@pytest.fixture
def finished(tmp_path, trained):
    """A copy of the finished run, this test's to damage."""
    shutil.copytree(trained, tmp_path / "run", symlinks=True)
    return tmp_path / "run"


# -- the same numbers under any load -----------------------------------------------------------------
@contextlib.contextmanager
def busy_neighbour():
    """Another process keeping one core busy."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def cnn_settings(mnist_folder) -> dict:
    return {"data_root": str(mnist_folder), "download": False, "epochs": 2, "batch_size": 50}


def comparable_rows(folder: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "train_s"}
            for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.integration
def test_the_same_seed_gives_the_same_rows_beside_a_busy_process(tmp_path, mnist_folder):
    quiet = run("cnn_mnist", out=tmp_path / "quiet", figures=False, quiet=True, **cnn_settings(mnist_folder))
    with busy_neighbour():
        busy = run("cnn_mnist", out=tmp_path / "busy", figures=False, quiet=True, **cnn_settings(mnist_folder))
    assert busy.summary["threads"] == quiet.summary["threads"]
    assert comparable_rows(tmp_path / "busy") == comparable_rows(tmp_path / "quiet")


@pytest.mark.integration
def test_a_run_killed_under_load_and_resumed_on_a_quiet_machine_ends_as_an_uninterrupted_one(
        tmp_path, mnist_folder, monkeypatch):

    monkeypatch.setenv("TORCHCLASSICS_CHECKPOINT_SECONDS", "0")
    settings = {**cnn_settings(mnist_folder), "epochs": 3}
    whole = run("cnn_mnist", out=tmp_path / "whole", figures=False, quiet=True, **settings)
    killed = tmp_path / "killed"
    with busy_neighbour():
        kill_after(start("run", "cnn_mnist", "--out", str(killed), "--no-figures", *as_sets(settings),
                         env=dict(os.environ)), killed, 2)
    resumed = run("cnn_mnist", out=killed, resume=True, figures=False, quiet=True)
    assert resumed.summary["resumed_from_epoch"] >= 1
    assert comparable_rows(killed) == comparable_rows(tmp_path / "whole")
    assert resumed.metrics == whole.metrics


# -- links planted in a run folder ---------------------------------------------------------------------
@pytest.mark.parametrize("planted", [".lock", "train.log"])
def test_a_link_planted_in_a_run_folder_never_touches_its_target(tmp_path, finished, capsys, planted):
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's own file\n")
    (finished / planted).unlink(missing_ok=True)
    (finished / planted).symlink_to(precious)
    code = main(["run", "regression", "--out", str(finished), "--resume", "--set", "epochs=7", "-q"])
    assert code == 2 and planted in one_error(capsys)
    assert precious.read_text() == "the user's own file\n"


def test_a_figure_that_is_a_link_is_replaced_never_its_target(tmp_path, finished):
    precious = tmp_path / "precious.png"
    precious.write_bytes(b"not yours")
    (finished / "figures" / "loss.png").unlink()
    (finished / "figures" / "loss.png").symlink_to(precious)
    assert main(["figures", str(finished)]) == 0
    assert precious.read_bytes() == b"not yours"
    assert not (finished / "figures" / "loss.png").is_symlink()


def test_a_figures_folder_that_links_out_of_the_run_is_refused(tmp_path, finished, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(finished / "figures")
    (finished / "figures").symlink_to(elsewhere)
    assert main(["figures", str(finished)]) == 2
    assert "figures is a symbolic link" in one_error(capsys)
    assert not list(elsewhere.iterdir())


# -- damaged or tampered checkpoints ---------------------------------------------------------------------
def flip_a_bit_of_the_weights(path: Path) -> None:
    """One bit of the first tensor's data: torch.load would read it without a word."""
    import struct

    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        member = next(i for i in archive.infolist() if i.filename.endswith("data/0"))
    start = member.header_offset
    name_length, extra_length = struct.unpack("<HH", data[start + 26:start + 30])
    data[start + 30 + name_length + extra_length + 3] ^= 0x40  # an exponent bit of the first float
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped bit", "text", "link to text"])
def test_a_damaged_best_checkpoint_is_one_line(tmp_path, finished, capsys, damage):
    best = finished / "checkpoints" / "best.pt"
    if damage == "flipped bit":
        flip_a_bit_of_the_weights(best)
    elif damage == "text":
        best.write_text("these are not weights\n")
    else:
        (tmp_path / "notes.txt").write_text("hello\n")
        best.unlink()
        best.symlink_to(tmp_path / "notes.txt")
    assert main(["evaluate", str(finished)]) == 2
    line = one_error(capsys)
    assert ("symbolic link out of" in line) if damage == "link to text" else ("damaged checkpoint" in line)


def tamper(last: Path, **values) -> None:
    saved = torch.load(last, weights_only=True)
    saved.update(values)
    torch.save(saved, last)


@pytest.mark.parametrize("values", [
    {"epoch": -5}, {"epoch": "abc"}, {"epoch": 3}, {"history": 5}, {"best": "x"}, {"record": [1, 2]},
    {"rng": {"torch": torch.zeros(3, dtype=torch.uint8), "numpy": {}, "python": (3, (), None)}},
    {"step_losses": ["a"]}, {"threads": 0},
], ids=lambda values: next(iter(values)))
def test_a_tampered_training_state_is_refused_with_nothing_changed(finished, capsys, values):
    tamper(finished / "checkpoints" / "last.pt", **values)
    before = snapshot(finished)
    assert main(["run", "regression", "--out", str(finished), "--resume", "--set", "epochs=8", "-q"]) == 2
    assert "damaged checkpoint" in one_error(capsys)
    assert snapshot(finished) == before


def test_a_checkpoint_of_a_newer_format_asks_for_a_newer_release(finished, capsys):
    tamper(finished / "checkpoints" / "last.pt", format=state.FORMAT + 1)
    assert main(["figures", str(finished)]) == 2
    assert "newer torchclassics" in one_error(capsys)


# -- a user's files ------------------------------------------------------------------------------------
def test_out_on_a_folder_of_the_users_files_refuses_and_deletes_nothing(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / ".backup.tmp").write_text("backup")
    (folder / ".draft.tmp.txt").write_text("draft")
    assert main(["run", "regression", "--out", str(folder), "-q"]) == 2
    assert "not empty and not a run directory" in one_error(capsys)
    assert sorted(p.name for p in folder.iterdir()) == [".backup.tmp", ".draft.tmp.txt"]


def test_a_killed_write_leaves_only_our_own_temporary_files_to_clean(tmp_path, finished):
    ours = finished / ".torchclassics.summary.abc123.tmp.json"
    ours.write_text("{")
    theirs = finished / ".notes.tmp"
    theirs.write_text("mine")
    run("regression", out=finished, resume=True, quiet=True, figures=False, epochs=6)
    assert not ours.exists() and theirs.read_text() == "mine"


@pytest.mark.parametrize("damage", ["deleted", "cut short"])
def test_a_resume_rewrites_lost_rows_from_the_checkpoint(tmp_path, finished, damage):
    metrics = finished / "metrics.jsonl"
    whole = metrics.read_text().splitlines()
    if damage == "deleted":
        metrics.unlink()
    else:
        metrics.write_text("\n".join(whole[:2]) + "\n")
    run("regression", out=finished, resume=True, quiet=True, figures=False, epochs=6)
    rows = metrics.read_text().splitlines()
    assert len(rows) == 6 and rows[:5] == whole


# -- every value checked before anything is written -----------------------------------------------------
@pytest.mark.parametrize("scheduler, why", [
    ({"name": "ExponentialLR", "gamma": -1}, "becomes -0.2 at epoch 1"),
    ({"name": "MultiStepLR", "milestones": [2], "gamma": -2}, "becomes -0.4 at epoch 2"),
    ({"name": "ExponentialLR", "gamma": 1e308}, "becomes inf at epoch 2"),
    ({"name": "CyclicLR", "base_lr": -1, "max_lr": 1}, "becomes -1 at epoch 0"),
    ({"name": "OneCycleLR", "max_lr": 0.1, "total_steps": 1}, "fails at epoch 2 of 5"),
    ({"name": "PolynomialLR", "power": -1, "total_iters": 5}, "fails at epoch 5 of 5"),
])
def test_a_schedule_that_cannot_train_is_refused_before_anything_is_written(tmp_path, capsys, scheduler, why):
    out = tmp_path / "r"
    code = main(["run", "regression", "--out", str(out), "--set", f"scheduler={json.dumps(scheduler)}",
                 "--set", "epochs=5", "-q"])
    line = one_error(capsys)
    assert code == 2 and "scheduler=" in line and why in line and "lr=0.2:" not in line
    assert not out.exists()


def test_optimizer_arguments_that_cannot_build_are_one_line(tmp_path, capsys):
    code = main(["run", "regression", "--out", str(tmp_path / "r"), "--set", "optimizer=Adam",
                 "--set", "optimizer_args.betas=[0.9]", "-q"])
    assert code == 2 and "optimizer_args={'betas': [0.9]}" in one_error(capsys)
    assert not (tmp_path / "r").exists()


def test_a_plugin_build_that_returns_no_task_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    module = tmp_path / "mine.py"
    module.write_text("from torchclassics.registry import Experiment, experiment\n\n"
                      "@experiment('mine')\nclass Mine(Experiment):\n    def build(self, params, device):\n"
                      "        return {'model': None}\n")
    (tmp_path / "experiments" / "mine").mkdir(parents=True)
    (tmp_path / "experiments" / "mine" / "params.json").write_text(json.dumps({"seed": 1, "epochs": 1}))
    monkeypatch.chdir(tmp_path)
    assert main(["run", "mine", "--module", str(module), "--out", str(tmp_path / "r"), "-q"]) == 2
    line = one_error(capsys)
    assert "build() returned dict, not a Task" in line and str(module) in line


def test_predict_with_a_text_on_an_image_run_says_what_it_classifies(tmp_path, mnist_folder, capsys):
    result = run("cnn_mnist", out=tmp_path / "r", figures=False, quiet=True, data_root=str(mnist_folder),
                 download=False, epochs=1)
    assert main(["predict", str(result.run_dir), "--text", "seven"]) == 1
    assert "classifies image files, not texts" in capsys.readouterr().err  # per-file errors go to stderr


def test_a_step_too_large_for_the_memory_is_refused_before_anything_is_written(tmp_path, capsys):
    """Each size within its bounds, their product far beyond any machine's memory."""
    out = tmp_path / "r"
    code = main(["run", "regression", "--out", str(out), "--set", "hidden=65536", "--set", "n_points=1000000",
                 "--set", "batch_size=1000000", "-q"])
    line = one_error(capsys)
    assert code == 2 and "one training step needs about" in line and "GiB available" in line
    assert "you changed n_points=1000000, hidden=65536, batch_size=1000000" in line
    assert not out.exists()


@pytest.mark.integration
@pytest.mark.parametrize("delay", [0.4, 0.8, 1.6])
def test_ctrl_c_while_the_command_starts_stops_it_cleanly(tmp_path, delay):
    """Ctrl-C while torch and the others are imported: once swallowed by a library (exit 0, the run went
    on) or turned into another library's traceback. Held until the start is over, it stops the command
    there (or in training, where it lands later on a fast machine): exit 130 and one line."""
    import signal

    from helpers import TIMEOUT_S

    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "torchclassics", "run", "regression", "--out", str(out), "-q",
                             "--no-figures", "--set", "epochs=3000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    import time

    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert [line for line in err.splitlines() if line.strip()] == [
        line for line in err.splitlines() if line.startswith("torchclassics: interrupted")]

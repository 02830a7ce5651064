"""The defaults as trial 0 of a new study, the summary at the end of a search (defaults against the
best, never a worse best_params.json), and Ctrl-C: running trials interrupted, not failed, and the
printed command continues the study to the asked number of complete trials."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from helpers import TIMEOUT_S, rows_written
from torchclassics.cli import main
from torchclassics.search import open_storage, parse_param, search, summary_lines
from torchclassics.search.baseline import baseline, default_of
from torchclassics.search.summary import Call, compared, continue_command

TINY = ["epochs=2", "gif_frames=2"]


def load(runs: Path, study: str = "regression"):
    return optuna.load_study(study_name=study, storage=open_storage(str(runs / "studies" / study / "journal.log")))


# -- the defaults, brought into the space ---------------------------------------------------------------
def space(*entries: str):
    return [parse_param(entry) for entry in entries]


def test_the_defaults_inside_the_space_are_kept_as_they_are():
    chosen = baseline({"lr": 0.2, "hidden": 10, "optimizer": "SGD"},
                      space("lr=loguniform:0.01:0.5", "hidden=int:4:64", "optimizer=choice:Adam,SGD"))
    assert (chosen.params, chosen.changes) == ({"lr": 0.2, "hidden": 10, "optimizer": "SGD"}, ())
    assert chosen.announcement() == "trial 0 is the defaults: lr=0.2, hidden=10, optimizer=SGD"


def test_defaults_outside_the_space_are_clipped_and_said_so():
    chosen = baseline({"lr": 0.0, "hidden": 10, "batch_size": None, "momentum": 0.9, "width": 100},
                      space("lr=loguniform:0.01:0.5", "hidden=int:4:8:3", "batch_size=choice:32,64",
                            "momentum=choice:0.5,0.95", "width=logint:2:64"))
    # 0 on a log scale: its low end; 10 on int:4:8:3: the range's own top step (7); a null not among
    # the choices: the first; 0.9: the nearest choice; 100 above logint:2:64: 64
    assert chosen.params == {"lr": 0.01, "hidden": 7, "batch_size": 32, "momentum": 0.95, "width": 64}
    said = chosen.announcement()
    assert said.startswith("trial 0 is the defaults: lr=0.01, hidden=7, batch_size=32, momentum=0.95, width=64 "
                           "(clipped: lr 0 -> 0.01, lr=loguniform:0.01:0.5; hidden 10 -> 7, hidden=int:4:8:3; ")
    assert "batch_size null is not among batch_size=choice:32,64: 32" in said


def test_a_range_without_a_numeric_default_is_left_to_the_sampler_and_dotted_keys_reach_inside():
    params = {"clip_grad_norm": None, "optimizer_args": {"momentum": 0.8}}
    chosen = baseline(params, space("clip_grad_norm=uniform:0.1:10", "optimizer_args.momentum=uniform:0.5:0.99"))
    assert chosen.params == {"optimizer_args.momentum": 0.8}
    assert chosen.changes == ("clip_grad_norm null is not a number of clip_grad_norm=uniform:0.1:10.0: the sampler "
                              "picks it",)
    assert default_of(params, "optimizer_args.momentum") == 0.8 and default_of(params, "nothing.here") is None


@pytest.mark.integration  # three searches train
def test_a_new_studys_first_trial_runs_the_resolved_defaults_clipped(tmp_path, monkeypatch, capsys):
    # the user's own experiments/regression/params.json is part of the defaults, as for `run regression`
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments" / "regression").mkdir(parents=True)
    (tmp_path / "experiments" / "regression" / "params.json").write_text(json.dumps({"lr": 0.45, "hidden": 30}))
    search("regression", trials=2, space=["lr=uniform:0.3:0.4", "hidden=int:4:64:4"], sets=[*TINY, "noise=0.1"],
           runs_dir="runs", device="cpu")
    first, second = load(tmp_path / "runs").trials
    assert first.params == {"lr": 0.4, "hidden": 28} and first.user_attrs["baseline"] is True
    assert "baseline" not in second.user_attrs
    ran = json.loads((tmp_path / "runs" / "regression" / "regression-trial-0" / "params.json").read_text())
    assert (ran["lr"], ran["hidden"], ran["noise"]) == (0.4, 28, 0.1)  # --set values are the defaults' too
    err = capsys.readouterr().err
    assert "trial 0 is the defaults: lr=0.4, hidden=28 (clipped: lr 0.45 -> 0.4, lr=uniform:0.3:0.4; hidden 30 -> " \
           "28, hidden=int:4:64:4)" in err

    search("regression", trials=1, space=["lr=uniform:0.3:0.4", "hidden=int:4:64:4"], sets=[*TINY, "noise=0.1"],
           runs_dir="runs", device="cpu")  # continuing: the defaults are not queued again
    trials = load(tmp_path / "runs").trials
    assert len(trials) == 3 and [t.user_attrs.get("baseline", False) for t in trials] == [True, False, False]
    assert "is the defaults" not in capsys.readouterr().err


def test_no_baseline_leaves_the_first_trial_to_the_sampler(tmp_path, capsys):
    # the defaults (lr 0.2) would be clipped to 0.02: the first trial is the sampler's, not at the range's end
    assert main(["search", "regression", "--trials", "1", "--param", "lr=uniform:0.01:0.02", "--set", "epochs=2",
                 "--runs-dir", str(tmp_path), "--device", "cpu", "--study", "cli", "--no-baseline", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["baseline_trial"] is None  # --json: stdout is the JSON alone
    assert "defaults: not a trial of this study" in out.err  # the summary, on stderr beside it
    first = load(tmp_path, "cli").trials[0]
    assert "baseline" not in first.user_attrs and first.params["lr"] != 0.02


# -- the summary ------------------------------------------------------------------------------------
@pytest.mark.integration  # a search of three trials
def test_when_no_trial_beats_the_defaults_the_summary_warns_and_best_params_holds_the_defaults(tmp_path, capsys):
    # lr 0.2 is the default; 1e-4 barely moves the weights in 2 epochs. A grid tries the defaults, then each
    # point: lr 0.2 again (a tie is no reason to leave the defaults) and 1e-4 (worse)
    assert main(["search", "regression", "--sampler", "grid", "--param", "lr=choice:0.2,0.0001", "--set", "epochs=2",
                 "--runs-dir", str(tmp_path), "--device", "cpu", "--pruner", "none"]) == 0
    out = capsys.readouterr().out
    assert "search regression: 3 trial(s) (3 complete)" in out
    assert "warning: no trial beat the defaults (the best other, trial " in out
    assert "as good as the defaults); best_params.json holds the defaults' parameters" in out
    assert f"retrain the defaults: torchclassics run regression --params {tmp_path}/studies/regression/" \
           "best_params.json --set epochs=2" in out
    best = json.loads((tmp_path / "studies" / "regression" / "best_params.json").read_text())
    assert (best["best_trial"], best["best_params"], best["best_is_baseline"]) == (0, {"lr": 0.2}, True)
    assert best["note"].startswith("no trial beat the defaults")
    assert not out.lstrip().startswith("{")  # a table, not JSON, without --json


def fake_trials(values: list[float], baseline_at: int = 0) -> list:
    lr = FloatDistribution(0.001, 1.0, log=True)
    return [create_trial(params={"lr": 0.1 * (n + 1)}, distributions={"lr": lr}, value=value,
                         user_attrs={"baseline": True} if n == baseline_at else {}) for n, value in enumerate(values)]


def result_of(trials: list, direction: str = "minimize") -> dict:
    """What search returns, for a study of ``trials`` (the summary reads nothing else)."""
    for n, trial in enumerate(trials):
        trial.number = n
    seen = compared(trials, direction)
    best = seen.pop("best")
    return {"study": "s", "metric": "test_mse", "direction": direction, "n_trials": len(trials),
            "trials_by_state": {"complete": len(trials)}, "best_trial": best.number, "best_value": best.value,
            "best_params": best.params, "retrain_command": "torchclassics run regression --params x.json", **seen}


def test_the_summary_says_how_much_better_the_best_is_in_the_objectives_direction():
    lines = summary_lines(result_of(fake_trials([0.0074, 0.0169, 0.0051234567])))
    assert lines[0] == "search s: 3 trial(s) (3 complete); test_mse, lower is better"
    assert lines[1] == "  defaults  trial 0  test_mse 0.0074    lr=0.1"
    assert lines[2] == "  best      trial 2  test_mse 0.005123  lr=0.3  (30.8 % better than the defaults)"
    assert lines[3] == "retrain the best: torchclassics run regression --params x.json"
    assert not any("warning" in line for line in lines)
    higher = summary_lines(result_of(fake_trials([0.90, 0.95]), direction="maximize"))
    assert "higher is better" in higher[0] and "(5.56 % better than the defaults)" in higher[2]


def test_the_summary_warns_when_every_other_trial_is_worse_and_names_the_best_of_them():
    result = result_of(fake_trials([0.0074, 0.0169, 0.0201]))
    assert (result["best_trial"], result["best_is_baseline"]) == (0, True)
    lines = summary_lines(result)
    assert lines[2] == ("  warning: no trial beat the defaults (the best other, trial 1: test_mse 0.0169, 128 % worse "
                        "than the defaults); best_params.json holds the defaults' parameters")
    assert lines[3].startswith("retrain the defaults: ")


def test_the_best_is_never_worse_than_the_defaults_even_on_a_tie():
    assert result_of(fake_trials([0.5, 0.5, 0.7], baseline_at=1))["best_trial"] == 1  # a tie: the defaults
    assert result_of(fake_trials([0.5, 0.4, 0.7], baseline_at=1))["best_trial"] == 1
    assert result_of(fake_trials([0.5, 0.6, 0.3], baseline_at=1))["best_trial"] == 2
    no_baseline = result_of(fake_trials([0.5, 0.4], baseline_at=-1))
    assert no_baseline["best_trial"] == 1 and no_baseline["baseline_trial"] is None
    assert "defaults: not a trial of this study" in summary_lines(no_baseline)[1]


def test_the_continue_command_repeats_what_names_the_study_and_its_space():
    call = Call(name="regression", trials=8, space=("lr=loguniform:0.01:0.5",), sets=("epochs=20",), study_name="s 1",
                storage="postgresql://me:secret@db/optuna", workers=2, runs_dir="runs", baseline=False)
    line = continue_command(call, 5)
    assert line == ("torchclassics search regression --trials 5 --study 's 1' --runs-dir runs --storage "
                    "'postgresql://me:***@db/optuna' --workers 2 --param lr=loguniform:0.01:0.5 --set epochs=20 "
                    "--no-baseline")
    assert "--trials" not in continue_command(Call(name="regression", sampler="grid"), 3, grid=True)


# -- Ctrl-C ---------------------------------------------------------------------------------------------
def default_sigint() -> None:
    """In the child: SIGINT as a terminal would deliver it (a background job's shell ignores it, and an
    ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_rows(proc: subprocess.Popen, run: Path, n: int = 1) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while rows_written(run) < n:
        assert proc.poll() is None, f"the search ended before it could be interrupted: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no row in {run} after {TIMEOUT_S} s"
        time.sleep(0.05)


@pytest.mark.integration  # the CLI in subprocesses
def test_ctrl_c_interrupts_a_search_and_the_printed_command_continues_it(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [sys.executable, "-m", "torchclassics", "search", "regression", "--trials", "3", "--runs-dir", "runs",
               "--pruner", "none", "--device", "cpu", "--set", "epochs=1500", "--set", "gif_frames=2"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    wait_for_rows(proc, tmp_path / "runs" / "regression" / "regression-trial-1")  # trial 0 done, trial 1 training
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 130, err
    said = [line for line in err.splitlines() if "interrupted" in line]
    assert len(said) == 1 and "Traceback" not in err and "failed" not in err and "last.pt" not in err, err
    assert said[0].startswith("torchclassics: search regression: interrupted; 1 of 3 trial(s) done; continue with: ")
    again = said[0].split("continue with: ", 1)[1]
    assert again.startswith("torchclassics search regression --trials 2 ")

    trials = load(tmp_path / "runs").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING]
    assert trials[1].user_attrs["interrupted"] is True and trials[2].user_attrs["rerun_of"] == 1
    marker = json.loads((tmp_path / "runs" / "regression" / "regression-trial-1" / "trial.json").read_text())
    assert marker["state"] == "interrupted"

    done = subprocess.run(shlex.split(again), cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S * 2)
    assert done.returncode == 0, done.stderr
    trials = load(tmp_path / "runs").trials
    states = [t.state for t in trials]
    assert TrialState.FAIL not in states and TrialState.RUNNING not in states and TrialState.WAITING not in states
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3  # the asked number
    assert trials[2].state == TrialState.COMPLETE and trials[2].params == trials[1].params  # the interrupted one, rerun
    assert "1 of them interrupted, run again" in done.stdout and "retrain the" in done.stdout


@pytest.mark.integration  # workers in subprocesses
def test_sigterm_to_the_command_interrupts_its_workers_trials_too(tmp_path):
    command = [sys.executable, "-m", "torchclassics", "search", "regression", "--trials", "4", "--workers", "2",
               "--runs-dir", str(tmp_path), "--pruner", "none", "--device", "cpu", "--set", "epochs=1000000"]
    # Not piped: the workers would hold the pipes open; stderr goes to a file.
    with open(tmp_path / "err.txt", "w") as err_file:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err_file)
        for n in (0, 1):  # both workers training (the signal reaches the command alone, not its workers)
            wait_for_rows(proc, tmp_path / "regression" / f"regression-trial-{n}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT_S) == 130
    err = (tmp_path / "err.txt").read_text()
    assert len([line for line in err.splitlines() if "interrupted" in line]) == 1 and "Traceback" not in err, err
    trials = load(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2 + [TrialState.WAITING] * 2, trials
    assert {t.user_attrs["rerun_of"] for t in trials[2:]} == {0, 1}
    assert sum(bool(t.user_attrs.get("baseline")) for t in trials[2:]) == 1  # the defaults' rerun is the defaults'

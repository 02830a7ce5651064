"""Hyper-parameter search: space parsing, parallel workers, continuing a study, pruning, killed trials,
and every argument checked before the study is written."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from helpers import kill_after
from torchclassics import api, registry
from torchclassics import search as search_module
from torchclassics.cli import main
from torchclassics.errors import UserError
from torchclassics.results import studies
from torchclassics.search import (
    Dimension,
    fail_dead_trials,
    load_space,
    objective_of,
    open_storage,
    param_importances,
    parse_dimension,
    parse_param,
    search,
    study_figures,
    with_installed_driver,
)
from torchclassics.search import samplers as samplers_module
from torchclassics.search.workers import Dispatcher, owner, process_alive, process_start

FAST = ["epochs=20"]
BEST_KEYS = {"experiment", "study", "metric", "direction", "sampler", "best_value", "best_params", "best_trial",
             "n_trials", "best_run_dir", "importances", "baseline_trial", "baseline_value", "best_is_baseline",
             "vs_baseline_pct"}
PNG = b"\x89PNG\r\n\x1a\n"


def load(runs: Path, study: str = "regression"):
    storage = open_storage(str(runs / "studies" / study / "journal.log"))
    return optuna.load_study(study_name=study, storage=storage)


# -- the search space -------------------------------------------------------------------
def test_every_spec_form_parses():
    assert parse_dimension("lr", "loguniform:1e-4:1e-1") == Dimension("lr", "loguniform", 1e-4, 1e-1)
    assert parse_dimension("lr", "uniform:0.1:0.5") == Dimension("lr", "uniform", 0.1, 0.5)
    assert parse_dimension("hidden", "int:4:64") == Dimension("hidden", "int", 4, 64)
    assert parse_dimension("hidden", "int:4:64:4") == Dimension("hidden", "int", 4, 64, 4)
    assert parse_dimension("hidden", "logint:2:128") == Dimension("hidden", "logint", 2, 128)
    assert parse_param("x=choice:32, 64,true,Adam,\"SGD\"").choices == (32, 64, True, "Adam", "SGD")


@pytest.mark.parametrize("text, says", [
    ("lr=normal:0:1", "unknown kind 'normal'"),
    ("lr=uniform:0.1", "expected uniform:LOW:HIGH"),
    ("lr=loguniform:0:1", "LOW > 0"),
    ("lr=uniform:0.5:0.1", "must be smaller"),
    ("hidden=int:1.5:4", "not an integer"),
    ("hidden=int:4:8:0", "STEP must be > 0"),
    ("lr=uniform:a:1", "'a' is not a number"),
    ("batch_size=choice:", "no choices"),
    ("lr", "expected KEY=SPEC"),
])
def test_a_bad_spec_is_a_user_error_naming_it(text, says):
    with pytest.raises(UserError, match=says) as err:
        parse_param(text)
    if "kind" in says:
        assert "loguniform:LOW:HIGH" in str(err.value) and "choice:V1,V2" in str(err.value)


@pytest.mark.parametrize("name", ["regression", "classification"])
def test_shipped_search_json_is_a_valid_space(name):
    space = load_space(name, None)
    assert {d.key for d in space} == {"lr", "hidden"}
    search_module.check_space(name, space, {})


@pytest.mark.parametrize("param, says", [
    ("hiden=int:4:8", "Did you mean 'hidden'"),
    ("hidden=choice:small,large", "hidden"),
    ("lr=uniform:0:0.5", "lr=0"),
])
def test_the_whole_space_is_checked_before_any_trial(tmp_path, param, says):
    with pytest.raises(UserError, match=says):
        search("regression", trials=2, space=[param], runs_dir=str(tmp_path))
    assert not (tmp_path / "regression").exists()  # no trial started


def test_a_key_both_fixed_and_searched_is_refused(tmp_path):
    with pytest.raises(UserError, match="both fixed"):
        search("regression", trials=1, space=["lr=uniform:0.1:0.2"], sets=["lr=0.1"], runs_dir=str(tmp_path))


def test_objective_comes_from_the_experiment_unless_overridden():
    regression = registry.get("regression")
    assert objective_of(regression, None, None) == ("test_mse", "minimize")
    assert objective_of(regression, "test_accuracy", None) == ("test_accuracy", "maximize")
    assert objective_of(regression, "mse", "maximize") == ("mse", "maximize")


def test_the_trials_owed_are_handed_out_once_and_a_dead_workers_trial_again():
    owed = Dispatcher(3)
    assert [owed.ask(0), owed.ask(1), owed.ask(0)] == [True, True, True]  # three trials started
    assert owed.ask(1) is None  # none left, but worker 0 is busy: 1 waits
    owed.lost(0)  # worker 0 died mid-trial: its trial is owed again, and the waiting worker gets it
    assert owed.answers() == {1: True}
    assert owed.ask(1) is False and owed.answers() == {}  # all run: nothing more


# -- whole searches ----------------------------------------------------------------------------
@pytest.mark.integration  # workers or the CLI in subprocesses
def test_parallel_search_then_the_same_command_continues_the_study(tmp_path):
    first = search("regression", trials=4, workers=2, sets=FAST, runs_dir=str(tmp_path), device="cpu")
    assert first["n_trials"] == 4 and first["study"] == "regression"
    runs = sorted(p.name for p in (tmp_path / "regression").iterdir())
    assert runs == [f"regression-trial-{n}" for n in range(4)]
    threads = max(1, len(os.sched_getaffinity(0)) // 2)  # 2 workers share the cores
    for n in range(4):
        run = tmp_path / "regression" / f"regression-trial-{n}"
        params = json.loads((run / "params.json").read_text())
        marker = json.loads((run / "trial.json").read_text())
        assert (params["epochs"], params["threads"], marker["threads"]) == (20, threads, threads)
        if marker["state"] == "complete":
            summary = json.loads((run / "summary.json").read_text())
            assert (summary["study"], summary["trial"]) == ("regression", n)
            assert summary["metrics"]["test_mse"] == pytest.approx(marker["value"])

    best = json.loads((tmp_path / "studies" / "regression" / "best_params.json").read_text())
    assert set(best) - {"note"} == BEST_KEYS and best["baseline_trial"] == 0
    assert best["best_params"] == first["best_params"] and set(best["best_params"]) == {"lr", "hidden"}
    assert Path(best["best_run_dir"]).name == f"regression-trial-{best['best_trial']}"
    assert (tmp_path / "studies" / "regression" / "history.png").read_bytes()[:4] == b"\x89PNG"
    # what each parameter did, beside the history: Optuna's plots of the 4 trials
    assert best["sampler"] == "tpe" and set(best["importances"]) == {"lr", "hidden"}
    assert sum(best["importances"].values()) == pytest.approx(1.0)
    for figure in ("importances", "slice", "contour"):
        assert Path(first[f"{figure}_path"]) == tmp_path / "studies" / "regression" / f"{figure}.png"
        assert Path(first[f"{figure}_path"]).read_bytes()[:8] == PNG

    # best_params.json goes back to run as a params file
    again = api.run("regression", params_file=tmp_path / "studies" / "regression" / "best_params.json", sets=FAST,
                out=tmp_path / "again", figures=False, device="cpu")
    assert {k: again.summary["params"][k] for k in best["best_params"]} == best["best_params"]
    assert again.metrics["test_mse"] == pytest.approx(best["best_value"])

    # the figures only read the study: the journal is the same after drawing them again
    journal = tmp_path / "studies" / "regression" / "journal.log"
    written = journal.read_bytes()
    study_figures(load(tmp_path), tmp_path / "redrawn", "test_mse")
    assert param_importances(load(tmp_path)) == pytest.approx(best["importances"])  # seeded: the same shares
    assert journal.read_bytes() == written

    second = search("regression", trials=2, sets=FAST, runs_dir=str(tmp_path), device="cpu")
    assert second["n_trials"] == 6
    assert [t.number for t in load(tmp_path).trials] == list(range(6))
    assert (tmp_path / "regression" / "regression-trial-5" / "params.json").is_file()
    assert second["best_value"] <= first["best_value"]  # minimising: the best never gets worse


class PruneAtEpoch3(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return trial.last_step is not None and trial.last_step >= 3


@pytest.mark.integration
def test_a_pruned_trial_leaves_a_sensible_run_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(samplers_module, "make_pruner", lambda kind, warmup: PruneAtEpoch3())
    # The engine checkpoints every few seconds; make every epoch due, so last.pt holds epoch 3.
    monkeypatch.setenv("TORCHCLASSICS_CHECKPOINT_SECONDS", "0")
    result = search("regression", trials=1, sets=FAST, runs_dir=str(tmp_path), device="cpu")
    assert load(tmp_path).trials[0].state == TrialState.PRUNED
    run = tmp_path / "regression" / "regression-trial-0"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
    assert (run / "params.json").is_file() and (run / "checkpoints" / "last.pt").is_file()
    assert not (run / "summary.json").exists()  # api.run writes it for finished runs only
    marker = json.loads((run / "trial.json").read_text())
    assert (marker["state"], marker["epoch"], marker["study"]) == ("pruned", 3, "regression")
    assert result["best_value"] is None and result["n_trials"] == 1
    # a pruned trial names its metrics as a finished one does: one column per metric downstream
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all({"mse", "test_mse"} <= row.keys() and "test_loss" not in row for row in rows)


def test_a_diverging_trial_fails_alone_and_the_search_goes_on(tmp_path):
    result = search("regression", trials=2, space=["lr=choice:1000"], sets=FAST, runs_dir=str(tmp_path),
                    pruner="none", device="cpu")
    assert [t.state for t in load(tmp_path).trials] == [TrialState.FAIL, TrialState.FAIL]
    assert result["trials_by_state"] == {"fail": 2}
    marker = json.loads((tmp_path / "regression" / "regression-trial-0" / "trial.json").read_text())
    assert marker["state"] == "failed" and "diverged" in marker["reason"]


@pytest.mark.integration
def test_rdb_storage_url_works_and_hides_its_password(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    result = search("regression", trials=1, sets=FAST, storage=url, study_name="shared", runs_dir=str(tmp_path),
                    device="cpu")
    assert result["storage"] == url and result["n_trials"] == 1
    assert optuna.load_study(study_name="shared", storage=url).trials[0].state == TrialState.COMPLETE
    assert (tmp_path / "regression" / "shared-trial-0" / "summary.json").is_file()
    with pytest.raises(UserError) as err:
        search("regression", trials=1, sets=FAST, storage="nosuchdb://user:secret@localhost/x",
               runs_dir=str(tmp_path))
    assert "secret" not in str(err.value)


def test_a_continued_study_keeps_its_metric_and_kinds_of_range(tmp_path):
    search("regression", trials=1, sets=["epochs=2"], study_name="s", runs_dir=str(tmp_path), device="cpu")
    with pytest.raises(UserError, match="metric='mse': study 's' searches metric 'test_mse'"):
        search("regression", trials=1, sets=["epochs=2"], study_name="s", metric="mse", runs_dir=str(tmp_path))
    with pytest.raises(UserError, match="space='lr=uniform:0.1:0.2': trial 0 .* start a new study"):
        search("regression", trials=1, space=["lr=uniform:0.1:0.2"], sets=["epochs=2"], study_name="s",
               runs_dir=str(tmp_path))
    assert len(load(tmp_path, "s").trials) == 1  # refused before any trial


def test_a_study_too_small_for_a_plot_gets_a_figure_saying_so(tmp_path, monkeypatch):
    notes = {}
    note = studies.note_figure
    monkeypatch.setattr(studies, "note_figure", lambda title, text: notes.setdefault(title, text) and note(title, text))
    result = search("regression", trials=1, sets=["epochs=2"], runs_dir=str(tmp_path), device="cpu")
    assert result["importances"] == {}
    assert notes == {"Parameter importances": "need 3 complete trials; this study has 1 so far",
                     "Contours": "need 2 complete trials; this study has 1 so far"}  # the slice plot has its one dot
    for figure in ("importances", "slice", "contour"):
        assert Path(result[f"{figure}_path"]).read_bytes()[:8] == PNG


# -- samplers ----------------------------------------------------------------------------------
def test_grid_values_of_each_spec_form():
    assert parse_dimension("lr", "loguniform:1e-3:1e-1").grid(3) == [0.001, 0.01, 0.1]
    assert parse_dimension("lr", "uniform:0.1:0.5").grid(5) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert parse_dimension("hidden", "int:4:64:4").grid(3) == [4, 32, 64]  # on the range's steps
    assert parse_dimension("hidden", "logint:2:128").grid(3) == [2, 16, 128]
    assert parse_dimension("hidden", "int:1:2").grid(3) == [1, 2]  # fewer values than points: all of them
    assert parse_param("batch_size=choice:32,64,128").grid(2) == [32, 64, 128]  # choices as listed


@pytest.mark.integration
def test_grid_runs_each_point_once_and_a_continued_grid_the_rest(tmp_path, capsys):
    grid = dict(sampler="grid", space=["lr=choice:0.1,0.2", "hidden=int:4:16"], grid_points=2, sets=FAST,
                runs_dir=str(tmp_path), device="cpu", pruner="none", baseline=False)
    assert search("regression", trials=1, **grid)["n_trials"] == 1
    rest = search("regression", **grid)  # no trials given: the points not tried yet
    points = sorted((t.params["lr"], t.params["hidden"]) for t in load(tmp_path).trials)
    assert points == [(0.1, 4), (0.1, 16), (0.2, 4), (0.2, 16)]  # each point once
    assert (rest["n_trials"], rest["sampler"]) == (4, "grid")
    assert "grid of 4 point(s): lr=0.1,0.2 x hidden=4,16; 3 not tried yet" in capsys.readouterr().err
    search("regression", **grid)
    assert len(load(tmp_path).trials) == 4 and "nothing to run" in capsys.readouterr().err


@pytest.mark.integration
def test_a_study_keeps_its_sampler(tmp_path):
    fast = dict(sets=["epochs=2"], study_name="s", runs_dir=str(tmp_path), device="cpu")
    search("regression", trials=1, sampler="random", **fast)
    with pytest.raises(UserError, match="sampler='tpe': study 's' is searched with random; continue it with "
                                        "sampler random"):
        search("regression", trials=1, sampler="tpe", **fast)
    again = search("regression", trials=1, **fast)  # no sampler given: the study's own
    assert (again["sampler"], again["n_trials"]) == ("random", 2)


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["gp", "botorch"])
def test_a_model_based_sampler_picks_after_the_startup_trials(tmp_path, monkeypatch, kind):
    if kind == "botorch":
        pytest.importorskip("botorch")
        from optuna_integration import BoTorchSampler as sampler_class
    else:
        sampler_class = optuna.samplers.GPSampler
    monkeypatch.setattr(samplers_module, "STARTUP_TRIALS", 2)
    picked, sample = [], sampler_class.sample_relative

    def spy(self, study, trial, space):
        params = sample(self, study, trial, space)
        picked.append((trial.number, sorted(params)))
        return params

    monkeypatch.setattr(sampler_class, "sample_relative", spy)
    result = search("regression", trials=3, sampler=kind, sets=FAST, runs_dir=str(tmp_path), device="cpu",
                    pruner="none")
    assert (result["sampler"], result["trials_by_state"]) == (kind, {"complete": 3})
    assert [(n, params) for n, params in picked if params] == [(2, ["hidden", "lr"])]  # the model's pick


def test_botorch_without_its_extra_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "botorch", None)  # as if not installed
    assert main(["search", "regression", "--sampler", "botorch", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and 'pip install "torchclassics[botorch]"' in err
    assert not (tmp_path / "regression").exists()


# -- databases ----------------------------------------------------------------------------------
def test_the_grace_period_of_a_database_study_is_a_setting(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = open_storage(url)
    assert (storage.heartbeat_interval, storage.grace_period) == (30, 120)
    monkeypatch.setenv("TORCHCLASSICS_SEARCH_GRACE_S", "6")
    storage = open_storage(url)
    assert (storage.heartbeat_interval, storage.grace_period) == (1, 6)
    monkeypatch.setenv("TORCHCLASSICS_SEARCH_GRACE_S", "soon")
    with pytest.raises(UserError, match="TORCHCLASSICS_SEARCH_GRACE_S=soon: expected a whole number of seconds"):
        open_storage(url)


def test_postgresql_urls_get_the_installed_driver():
    assert with_installed_driver("sqlite:///studies.db") == "sqlite:///studies.db"
    assert with_installed_driver("postgresql+psycopg://u@db/optuna") == "postgresql+psycopg://u@db/optuna"
    pytest.importorskip("psycopg2")
    assert with_installed_driver("postgresql://u:pw@db/optuna") == "postgresql+psycopg2://u:pw@db/optuna"


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # a trial asked for by hand, not by optimize
def test_on_a_database_only_a_worker_seen_dying_is_failed_at_once_and_queued_again(tmp_path):
    study = optuna.create_study(study_name="s", storage=open_storage(f"sqlite:///{tmp_path / 'studies.db'}"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    trial = study.ask({"lr": optuna.distributions.FloatDistribution(0.01, 0.5)})
    for key, value in {**owner(), "pid": dead.pid, "pid_start": None}.items():
        trial.set_user_attr(key, value)
    # Another machine may have the same host name: its own process ids mean nothing here.
    assert fail_dead_trials(study, pids=set()) == []
    assert fail_dead_trials(study, pids={dead.pid}) == [0]
    failed, queued = study.trials
    assert (failed.state, queued.state) == (TrialState.FAIL, TrialState.WAITING)
    assert queued.system_attrs["failed_trial"] == 0 and queued.params == failed.params


# -- trials whose process died ------------------------------------------------------------------
def test_a_running_trial_of_a_dead_process_is_failed(tmp_path):
    storage = open_storage(str(tmp_path / "journal.log"))
    study = optuna.create_study(study_name="s", storage=storage)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for pid in (dead.pid, os.getpid()):
        trial = study.ask()
        for key, value in owner().items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("pid", pid)
        if pid == dead.pid:
            trial.set_user_attr("pid_start", None)
    assert fail_dead_trials(study) == [0]
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.RUNNING]


@pytest.mark.integration  # workers or the CLI in subprocesses
def test_sigkill_mid_trial_then_the_next_search_fails_it_and_goes_on(tmp_path):
    command = [sys.executable, "-m", "torchclassics", "search", "regression", "--trials", "1",
               "--runs-dir", str(tmp_path), "--param", "lr=uniform:0.05:0.1", "--pruner", "none",
               "--set", "epochs=1000000", "--device", "cpu"]
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after(worker, tmp_path / "regression" / "regression-trial-0", 1)  # mid-trial
    assert load(tmp_path).trials[0].state == TrialState.RUNNING  # what SIGKILL leaves behind

    result = search("regression", trials=1, space=["lr=uniform:0.05:0.1"], sets=FAST, runs_dir=str(tmp_path),
                    device="cpu")
    trials = load(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert "ended mid-trial" in trials[0].system_attrs["fail_reason"]
    assert result["n_trials"] == 2 and result["best_trial"] == 1


def test_a_metric_the_runs_do_not_have_is_refused_and_the_study_is_left_untouched(tmp_path):
    with pytest.raises(UserError, match="metric='test_nothing': not among the metrics of regression .*test_mse"):
        search("regression", trials=3, sets=["epochs=2"], metric="test_nothing", runs_dir=str(tmp_path), device="cpu")
    # No study, no journal line, no trial folder: nothing remembers the wrong metric...
    assert not (tmp_path / "studies").exists()
    assert not list((tmp_path / "regression").glob("*"))  # the checking trial's run is not left behind
    # ...so the same study searches its default metric at once.
    result = search("regression", trials=1, sets=["epochs=2"], runs_dir=str(tmp_path), device="cpu")
    assert (result["metric"], result["n_trials"]) == ("test_mse", 1)
    assert load(tmp_path).user_attrs["metric"] == "test_mse"


@pytest.mark.integration
def test_a_metric_of_the_runs_is_checked_on_a_first_trial_then_kept_in_the_study(tmp_path, capsys):
    result = search("regression", trials=2, sets=["epochs=2"], metric="mse", runs_dir=str(tmp_path), device="cpu")
    assert "trial 0 runs first, alone" in capsys.readouterr().err
    study = load(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 and study.user_attrs["metric"] == "mse"
    first = study.trials[0]
    assert Path(first.user_attrs["run_dir"]) == (tmp_path / "regression" / "regression-trial-0").resolve()
    summary = json.loads((tmp_path / "regression" / "regression-trial-0" / "summary.json").read_text())
    assert summary["trial"] == 0 and summary["metrics"]["mse"] == pytest.approx(first.value)
    assert result["n_trials"] == 2
    search("regression", trials=1, sets=["epochs=2"], metric="mse", runs_dir=str(tmp_path), device="cpu")
    assert "runs first" not in capsys.readouterr().err  # the study remembers a checked metric


# -- storages ----------------------------------------------------------------------------------
def test_a_storage_file_that_is_not_a_journal_is_refused_and_left_as_it_was(tmp_path):
    mine = tmp_path / "notes.txt"
    mine.write_bytes(b"my own notes\nnot a journal\n")
    before = mine.read_bytes(), mine.stat().st_mtime_ns
    with pytest.raises(UserError, match=f"storage='{mine}': not an Optuna journal"):
        search("regression", trials=1, sets=["epochs=2"], storage=str(mine), runs_dir=str(tmp_path), device="cpu")
    assert (mine.read_bytes(), mine.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no lock, no study folder, no trial


@pytest.mark.integration
def test_two_studies_of_one_name_in_two_storages_keep_their_files_apart(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    fast = dict(sets=["epochs=2"], runs_dir=str(tmp_path), device="cpu")
    in_journal = search("regression", trials=1, **fast)
    in_database = search("regression", trials=2, storage=url, **fast)
    journal_files = Path(in_journal["best_params_path"]).parent
    database_files = Path(in_database["best_params_path"]).parent
    assert journal_files == tmp_path / "studies" / "regression"  # the default journal's own folder, as before
    assert database_files.parent == tmp_path / "studies" and database_files.name.startswith("regression@sqlite-")
    assert json.loads((journal_files / "best_params.json").read_text())["n_trials"] == 1
    assert json.loads((database_files / "best_params.json").read_text())["n_trials"] == 2
    assert not (database_files / "journal.log").exists()
    # the same database gives the same folder again (on every machine: the URL's hash, not a counter)
    assert Path(search("regression", trials=1, storage=url, **fast)["best_params_path"]).parent == database_files


@pytest.mark.integration
def test_concurrent_searches_leave_best_params_naming_the_studys_best(tmp_path, monkeypatch):
    """The interleaving of two searches ending together, made certain: search A has read the study and
    is still computing when search B completes a better trial and ends. A must not write its older view
    after B: each reads and writes under the study folder's lock."""
    search("regression", trials=3, sets=["epochs=5"], runs_dir=str(tmp_path), device="cpu", pruner="none")
    study = load(tmp_path)
    plan = search_module.Plan(name="regression", study="regression", storage=str(tmp_path / "studies" / "regression"
                                                                                  / "journal.log"),
                              space=(), sets=(), metric="test_mse", direction="minimize", pruner="none", warmup=1,
                              runs_root=str(tmp_path), device="cpu")
    folder = tmp_path / "studies" / "regression"
    importances, other = studies.param_importances, []

    def slow_importances(view):
        if not other:  # A, mid-write: B adds the study's new best and ends
            better = optuna.trial.create_trial(params=study.best_params, distributions=study.best_trial.distributions,
                                               value=study.best_value / 10)
            load(tmp_path).add_trial(better)
            other.append(threading.Thread(target=search_module.finish, args=(load(tmp_path), plan, folder, "")))
            other[0].start()
            other[0].join(timeout=8)  # B waits for A's lock (without one, B would have written by now)
        return importances(view)

    monkeypatch.setattr(studies, "param_importances", slow_importances)
    search_module.finish(study, plan, folder, "")
    other[0].join()
    best = json.loads((folder / "best_params.json").read_text())
    final = load(tmp_path)
    assert (best["best_trial"], best["n_trials"]) == (final.best_trial.number, 4) == (3, 4)
    assert best["best_value"] == pytest.approx(final.best_value)


# -- workers that die ----------------------------------------------------------------------------
def test_process_liveness_tells_a_process_from_a_later_one_with_its_id():
    me, started = os.getpid(), process_start(os.getpid())
    assert process_alive(me, started) and process_alive(me, None)
    assert not process_alive(me, started - 60)  # the same id, another start: another process
    ticks = str(round((started - __import__("psutil").boot_time()) * os.sysconf("SC_CLK_TCK")))
    assert process_alive(me, ticks)  # a trial recorded by release 0.1.0: /proc's clock ticks since boot
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not process_alive(dead.pid, None)


@pytest.mark.integration
def test_a_database_being_created_by_another_machine_is_opened_again(tmp_path, monkeypatch):
    from sqlalchemy.exc import IntegrityError

    from torchclassics.search import storage as storage_module

    calls = []

    def racing(url, **kwargs):
        calls.append(url)
        if len(calls) < 3:
            raise IntegrityError("CREATE TABLE", {}, Exception("duplicate key value violates unique constraint"))
        return "opened"

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    assert storage_module._rdb_storage("sqlite:///x.db") == "opened" and len(calls) == 3
    calls.clear()
    with pytest.raises(IntegrityError):
        storage_module._rdb_storage("sqlite:///x.db", attempts=2)
    assert len(calls) == 2


def workers_of(search_pid: int, count: int, timeout: float = 120) -> list:
    """The worker processes of a search command (its children running a trial), once ``count`` run."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [p for p in psutil.Process(search_pid).children() if "spawn_main" in " ".join(p.cmdline())]
        if len(children) >= count:
            return children
        time.sleep(0.2)
    pytest.fail(f"the search never had {count} workers")


def running_trial_of(runs: Path, pids: set[int], timeout: float = 180):
    """(trial number, worker pid) of a trial that a worker in ``pids`` is training (rows logged)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        journal = runs / "studies" / "regression" / "journal.log"
        if journal.is_file():
            for trial in load(runs).get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                run = Path(trial.user_attrs.get("run_dir", "/nonexistent"))
                if trial.user_attrs.get("pid") in pids and (run / "metrics.jsonl").is_file():
                    return trial.number, trial.user_attrs["pid"]
        time.sleep(0.2)
    pytest.fail("no trial started")


@pytest.mark.integration
def test_a_killed_workers_trials_are_run_by_the_other_and_the_asked_count_is_reached(tmp_path):
    command = [sys.executable, "-m", "torchclassics", "search", "regression", "--trials", "4", "--workers", "2",
               "--runs-dir", str(tmp_path), "--pruner", "none", "--set", "epochs=300", "--device", "cpu", "--json"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = {p.pid for p in workers_of(proc.pid, 2)}
    number, victim = running_trial_of(tmp_path, pids)
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    trials = load(tmp_path).trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 4 and states.count(TrialState.FAIL) == 1, states
    assert trials[number].state == TrialState.FAIL and "ended mid-trial" in trials[number].system_attrs["fail_reason"]
    assert f"was killed by signal {int(signal.SIGKILL)}" in err
    assert json.loads(out)["trials_by_state"] == {"complete": 4, "fail": 1}  # --json: stdout is the result


@pytest.mark.integration
def test_workers_end_with_a_killed_search_command(tmp_path):
    command = [sys.executable, "-m", "torchclassics", "search", "regression", "--trials", "4", "--workers", "2",
               "--runs-dir", str(tmp_path), "--pruner", "none", "--set", "epochs=1000000", "--device", "cpu"]
    # Not piped: the workers would hold the pipes open, and reading them would wait for the workers.
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = workers_of(proc.pid, 2)
    running_trial_of(tmp_path, {p.pid for p in workers})
    proc.kill()
    proc.wait()
    import psutil

    gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, f"workers still running after their search was killed: {alive}"
    # each ended as after Ctrl-C: its running trial interrupted (pruned, queued again), the reason in its trial.json
    trials = load(tmp_path).trials
    assert all(t.state not in (TrialState.RUNNING, TrialState.FAIL) for t in trials), trials
    reasons = [json.loads(p.read_text()).get("reason") for p in (tmp_path / "regression").glob("*/trial.json")]
    assert reasons and all("search command" in (r or "") for r in reasons), reasons

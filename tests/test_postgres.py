"""Search across machines on a real PostgreSQL server: two `torchclassics search` processes with
their own runs roots (two machines) share one study; a killed worker's trial is failed by the
heartbeat and run again by the other.

The server is Debian's `postgresql` package (.ci/run installs it), started here on 127.0.0.1 in a
temporary data directory, as an unprivileged user when the tests run as root (the server refuses
root). Without a server binary the tests skip, except under CI, where they fail.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers import kill_after

pytestmark = [pytest.mark.external, pytest.mark.integration]  # a PostgreSQL server; searches in subprocesses

pytestmark = [pytest.mark.external, pytest.mark.integration]  # a PostgreSQL server; searches in subprocesses

SERVER_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
GRACE_S = 3  # seconds without a heartbeat before a trial counts as dead (the default is 120)


def missing(what: str) -> None:
    """Skip on a developer's machine without it; fail under CI, which must have it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} under CI: .ci/run installs Debian's postgresql and the [dev] extra psycopg2-binary")
    pytest.skip(f"{what} (apt-get install postgresql; pip install psycopg2-binary)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_user() -> str | None:
    """The user the server runs as: none needed unless we are root, which it refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.fail("running as root, and neither a 'postgres' nor a 'nobody' user to run the server as")


def as_user(user: str | None, command: list[str]) -> list[str]:
    return command if user is None else ["runuser", "-u", user, "--", *command]


@pytest.fixture(scope="module")
def postgres_url():
    if not SERVER_BINARIES:
        missing("no PostgreSQL server (/usr/lib/postgresql/*/bin/pg_ctl)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        missing("no PostgreSQL driver (psycopg2)")
    bin_dir = SERVER_BINARIES[-1].parent  # the newest installed version
    user = server_user()
    # Not under pytest's tmp_path: its parents are private to root, and the server's user must reach it.
    folder = Path(tempfile.mkdtemp(prefix="torchclassics-pg-"))
    data = folder / "data"
    data.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (folder, data):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    try:
        subprocess.run(as_user(user, [str(bin_dir / "initdb"), "-D", str(data), "-U", "optuna", "-A", "trust",
                                      "--no-sync", "--no-locale", "-E", "UTF8"]), **run)
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder} -c fsync=off"
        subprocess.run(as_user(user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                                      "-l", str(folder / "server.log"), "-w", "start"]), **run)
    except subprocess.CalledProcessError as err:
        log = folder / "server.log"
        said = f"{err.stderr or err.stdout}{log.read_text() if log.exists() else ''}"
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {said}")
    try:
        yield f"postgresql://optuna@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_user(user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def search_command(url: str, study: str, runs: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "torchclassics", "search", "regression", "--storage", url, "--study", study,
            "--runs-dir", str(runs), "--pruner", "none", "--device", "cpu", *extra]


def study_trials(url: str, study: str):
    import optuna

    from torchclassics.search import open_storage  # postgresql:// with the driver installed

    return optuna.load_study(study_name=study, storage=open_storage(url)).get_trials(deepcopy=False)


def test_two_machines_add_their_trials_to_one_study(postgres_url, tmp_path):
    roots = [tmp_path / "machine-a", tmp_path / "machine-b"]
    workers = [subprocess.Popen(search_command(postgres_url, "shared", root, "--trials", "2", "--set", "epochs=10"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for root in roots]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err

    from optuna.trial import TrialState

    trials = study_trials(postgres_url, "shared")
    assert [t.number for t in trials] == [0, 1, 2, 3]  # none lost, none numbered twice
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # Each trial's run directory exists once, on the machine that ran it, and holds that trial.
    found = {}
    for root in roots:
        for run in (root / "regression").iterdir():
            assert run.name not in found, f"{run.name} on both machines"
            found[run.name] = run
    assert sorted(found) == [f"shared-trial-{n}" for n in range(4)]
    for trial in trials:
        run = found[f"shared-trial-{trial.number}"]
        assert Path(trial.user_attrs["run_dir"]) == run.resolve()
        summary = json.loads((run / "summary.json").read_text())
        assert (summary["study"], summary["trial"]) == ("shared", trial.number)
        assert summary["metrics"]["test_mse"] == pytest.approx(trial.value)
    assert sum(1 for run in found.values() if roots[0] in run.parents) == 2  # each machine ran its --trials
    # Each machine writes the study's best, in a folder named after the study and its database (the same
    # name on both machines, apart from any study "shared" kept elsewhere); the one that finished last saw
    # every trial.
    folders = [sorted((root / "studies").glob("shared@postgresql-*")) for root in roots]
    assert all(len(found) == 1 for found in folders) and folders[0][0].name == folders[1][0].name, folders
    assert not (roots[0] / "studies" / "shared").exists()
    records = [json.loads((found[0] / "best_params.json").read_text()) for found in folders]
    assert max(r["n_trials"] for r in records) == 4 and {r["sampler"] for r in records} == {"tpe"}


def test_a_killed_workers_trial_is_failed_by_its_silence_and_run_again(postgres_url, tmp_path):
    env = {**os.environ, "TORCHCLASSICS_SEARCH_GRACE_S": str(GRACE_S)}
    space = ["--param", "lr=uniform:0.05:0.1", "--param", "hidden=int:4:32"]
    machine_a = subprocess.Popen(search_command(postgres_url, "killed", tmp_path / "a", "--trials", "1",
                                                "--set", "epochs=1000000", *space),
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after(machine_a, tmp_path / "a" / "regression" / "killed-trial-0", 1)  # mid-trial
    time.sleep(GRACE_S + 1)  # its last heartbeat is now older than the grace period

    machine_b = subprocess.run(search_command(postgres_url, "killed", tmp_path / "b", "--trials", "1",
                                              "--set", "epochs=10", *space),
                               env=env, capture_output=True, text=True, timeout=300)
    assert machine_b.returncode == 0, machine_b.stderr
    said = f"trial 0 sent no heartbeat for {GRACE_S} s (a worker died); marked failed and queued again"
    assert said in machine_b.stderr

    from optuna.trial import TrialState

    killed, retried = study_trials(postgres_url, "killed")
    assert (killed.number, killed.state) == (0, TrialState.FAIL)
    assert (retried.number, retried.state) == (1, TrialState.COMPLETE)
    assert retried.system_attrs["failed_trial"] == 0 and retried.params == killed.params  # the same point again
    assert (tmp_path / "b" / "regression" / "killed-trial-1" / "summary.json").is_file()
    assert not (tmp_path / "b" / "regression" / "killed-trial-0").exists()  # ran once, on machine b, as trial 1

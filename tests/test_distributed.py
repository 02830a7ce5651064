"""One code path for 1 and N processes (torchrun, CPU processes over gloo): N processes train as
one does (batch_size is the global batch), two "nodes" on one machine too, and a worker killed
under torchrun --max-restarts is restarted and resumes from the checkpoint by itself."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.external, pytest.mark.integration]  # torchrun: several processes

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # CPU processes (gloo)
TIMEOUT_S = 300
ARGS = ["run", "regression", "--no-figures", "--quiet", "--set", "epochs=30", "--set", "batch_size=20",
        "--set", "optimizer=Adam", "--set", "lr=0.01"]  # mini-batches: the global-batch split matters


def torchrun(*options, args=ARGS, out: Path, wait=True):
    command = [sys.executable, "-m", "torch.distributed.run", *options, "-m", "torchclassics", *args, "--out", str(out)]
    if not wait:
        return subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=TIMEOUT_S)


def metrics(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())["metrics"]


def rows(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "train_s"}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run"
    subprocess.run([sys.executable, "-m", "torchclassics", *ARGS, "--out", str(out)], check=True, env=ENV,
                   capture_output=True, timeout=TIMEOUT_S)
    return out


def same_training(a: dict, b: dict) -> None:
    for key, value in a.items():
        assert b[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


def test_two_processes_train_as_one(tmp_path, one_process):
    ddp = torchrun("--standalone", "--nproc_per_node=2", out=tmp_path / "two")
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["world_size"] == 2
    same_training(metrics(one_process), metrics(tmp_path / "two"))
    assert ddp.stdout.count("regression:") == 1, "rank 0 alone reports"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_one_machine_train_as_one(tmp_path, one_process):
    rendezvous = ["--nnodes=2", "--nproc_per_node=1", "--rdzv-backend=c10d",
                  f"--rdzv-endpoint=127.0.0.1:{free_port()}", "--rdzv-id=two-nodes"]
    nodes = [torchrun(*rendezvous, out=tmp_path / "nodes", wait=False) for _ in range(2)]
    outputs = [node.communicate(timeout=TIMEOUT_S) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    same_training(metrics(one_process), metrics(tmp_path / "nodes"))


def worker_pids(parent: int) -> list[int]:
    """The worker processes torchrun started (its children running torchclassics)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")
def test_a_killed_worker_is_restarted_and_resumes_by_itself(tmp_path):
    args = [*ARGS[:-8], "--set", "epochs=600",  # ~15 s of training: time to kill a worker after last.pt
            "--set", "batch_size=20", "--set", "optimizer=Adam",
            "--set", "lr=0.01"]
    env_whole = torchrun("--standalone", "--nproc_per_node=2", args=args, out=tmp_path / "whole")
    assert env_whole.returncode == 0, env_whole.stderr[-2000:]
    job = torchrun("--standalone", "--nproc_per_node=2", "--max-restarts=1", args=args, out=tmp_path / "killed",
                   wait=False)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + TIMEOUT_S
    while not last.exists():
        assert job.poll() is None, job.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    workers = worker_pids(job.pid)
    assert len(workers) == 2
    os.kill(workers[1], signal.SIGKILL)
    stdout, stderr = job.communicate(timeout=TIMEOUT_S)
    assert job.returncode == 0, stderr[-3000:]
    assert "resumed training at epoch" in (tmp_path / "killed" / "train.log").read_text()  # --quiet: not on stderr
    assert rows(tmp_path / "killed") == rows(tmp_path / "whole")

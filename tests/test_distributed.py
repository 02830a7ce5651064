"""One code path for 1 and N processes: torchrun with 2 CPU processes (gloo) trains the same
model as one process when the global batch is the same (full-batch classification)."""
import json
import os
import subprocess
import sys


def test_torchrun_two_processes_match_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # CPU processes (gloo)
    args = ["run", "classification", "--no-figures", "--set", "epochs=20"]
    subprocess.run([sys.executable, "-m", "torchclassics", *args, "--out", str(tmp_path / "one")],
                   check=True, capture_output=True, env=env, timeout=300)
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "torchclassics", *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one = json.loads((tmp_path / "one" / "summary.json").read_text())
    two = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert two["world_size"] == 2
    for key, value in one["metrics"].items():
        assert abs(two["metrics"][key] - value) < 1e-5, key
    assert ddp.stdout.count("classification:") == 1, "rank 0 alone reports"

"""DDP on the CPU: the same run with 1 process and with N gloo processes under torchrun.

Both train the same experiment with the same parameters (``batch_size`` is the global batch, so
both take the same optimizer steps); the rounds alternate. Prints the median training time
(``train_s``) of each, the speed-up and the efficiency (speed-up / N), and checks the held-out
metric agrees.

    python benchmarks/ddp_cpu.py --processes 2 --repeats 3
    python benchmarks/ddp_cpu.py --experiment cnn_mnist --set epochs=1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def one_run(out: Path, args, processes: int) -> dict:
    command = ["-m", "torchclassics", "run", args.experiment, "--no-figures", "--quiet", "--out", str(out),
               *[a for s in args.sets for a in ("--set", s)]]
    if processes > 1:
        command = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *command]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(args.threads)}
    subprocess.run([sys.executable, *command], check=True, capture_output=True, env=env)
    return json.loads((out / "summary.json").read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="classification")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per process (default 1)")
    parser.add_argument("--set", dest="sets", action="append",
                        default=["epochs=400", "n_per_class=2000", "batch_size=400", "hidden=64"],
                        help="parameters of both runs (default: a classification run big enough to time)")
    args = parser.parse_args(argv)
    times = {1: [], args.processes: []}
    metric = None
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.repeats):
            order = (1, args.processes) if round_no % 2 == 0 else (args.processes, 1)
            for processes in order:
                summary = one_run(Path(tmp) / f"{processes}-{round_no}", args, processes)
                times[processes].append(summary["train_s"])
                metric = metric or summary["objective"]["metric"]
                print(f"round {round_no + 1}, {processes} process(es): train_s {summary['train_s']:.2f} s, "
                      f"{metric} {summary['metrics'][metric]:.6g}", flush=True)
    single, many = statistics.median(times[1]), statistics.median(times[args.processes])
    speedup = single / many
    print(f"median train_s: 1 process {single:.2f} s, {args.processes} processes {many:.2f} s; "
          f"speed-up {speedup:.2f}x, efficiency {speedup / args.processes:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

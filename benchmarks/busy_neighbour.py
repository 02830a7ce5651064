"""One epoch of cnn_mnist on a quiet CPU and beside another CPU-bound process.

OpenMP threads wait for each other at every operation, so a training that uses every core
slows down far more than its share when another process keeps one core busy. The engine
chooses its CPU threads from the cores other work leaves idle (``engine.loop.idle_cpus``: the
machine's busy CPU time over 0.2 s less its own). This measures one epoch (``train_s``) with that policy and with
the policy switched off (every core, torch's default), first on the quiet machine, then with
one busy-loop process beside it, and prints the slow-down of each: busy / quiet.

    python benchmarks/busy_neighbour.py --repeats 3

Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from cnn_mnist_vs_tutorial import engine, prepare_data  # noqa: E402  (the same data and run as that benchmark)

from torchclassics.engine import loop  # noqa: E402

POLICIES = ("engine's policy", "every core")


def busy_loop() -> None:
    while True:
        pass


def one_epoch(policy: str, root: Path, workdir: Path, tag: str) -> float:
    chosen = loop.idle_cpus
    if policy == "every core":
        loop.idle_cpus = lambda: os.cpu_count() or 1
    try:
        return engine(root, torch.device("cpu"), 1, workdir / tag, [])[0]
    finally:
        loop.idle_cpus = chosen


def rounds(repeats: int, root: Path, workdir: Path, label: str) -> dict[str, list[float]]:
    times = {policy: [] for policy in POLICIES}
    for i in range(repeats):
        for policy in POLICIES if i % 2 == 0 else reversed(POLICIES):
            times[policy].append(one_epoch(policy, root, workdir, f"{label}-{i}-{POLICIES.index(policy)}"))
            print(f"{label} round {i + 1}: {policy}: {times[policy][-1]:.2f} s (load {os.getloadavg()[0]:.2f})",
                  flush=True)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tc-busy-") as tmp:
        workdir = Path(tmp)
        root, label = prepare_data(argparse.Namespace(data_root=None, synthetic_full=False), workdir)
        print(f"data: {label}; {os.cpu_count()} cores; torch {torch.__version__}", flush=True)
        engine(root, torch.device("cpu"), 1, workdir / "warm-up", [])
        quiet = rounds(args.repeats, root, workdir, "quiet")
        neighbour = multiprocessing.Process(target=busy_loop, daemon=True)
        neighbour.start()
        try:
            time.sleep(1)  # the neighbour spins
            print(f"neighbour started: idle cores {loop.idle_cpus()} of {os.cpu_count()}", flush=True)
            busy = rounds(args.repeats, root, workdir, "busy")
        finally:
            neighbour.terminate()
    print(f"\n{'policy':<16} {'quiet s':>8} {'busy s':>8} {'busy/quiet':>11}")
    for policy in POLICIES:
        q, b = statistics.median(quiet[policy]), statistics.median(busy[policy])
        print(f"{policy:<16} {q:>8.2f} {b:>8.2f} {b / q:>10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

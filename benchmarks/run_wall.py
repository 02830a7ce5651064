"""`torchclassics run regression` end to end, as a user waits for it, against its parts.

A whole process each time (Python's start, imports, training, evaluation, figures and GIF),
alternating with the baselines ``python -c "import torch"`` and the same run with
``--no-figures``; medians over the rounds, and the run's own ``train_s`` from summary.json.

    python benchmarks/run_wall.py --repeats 5
    python benchmarks/run_wall.py --experiment classification
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, capture_output=True, check=True)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="regression")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    run = [sys.executable, "-m", "torchclassics", "run", args.experiment, "--quiet", "--out"]
    commands = {
        "import torch": lambda i: [sys.executable, "-c", "import torch"],
        f"run {args.experiment} --no-figures": lambda i: [*run, f"bare-{i}", "--no-figures"],
        f"run {args.experiment}": lambda i: [*run, f"whole-{i}"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as here:
        timed([*run, "warm-up"], here)  # the file cache, matplotlib's font cache
        for i in range(args.repeats):
            for name in commands if i % 2 == 0 else reversed(commands):
                times[name].append(timed(commands[name](i), here))
        train_s = statistics.median(json.loads((Path(here) / f"whole-{i}" / "summary.json").read_text())["train_s"]
                                    for i in range(args.repeats))
    print(f"{'command':<36} {'median s':>9}")
    for name, values in times.items():
        print(f"{name:<36} {statistics.median(values):>9.2f}")
    print(f"{'train_s (inside the run)':<36} {train_s:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

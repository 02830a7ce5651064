"""How long the commands that answer without training take, against ``import torch`` alone.

Listing, parameters and every mistake in a command line are answered from the package's data
files, without importing torch; this measures each as a whole process (Python's start
included), alternating the commands over several rounds, and prints medians next to the
baseline ``python -c "import torch"`` measured in the same run.

    python benchmarks/instant_answers.py --repeats 7
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "--help": ["--help"],
    "--version": ["--version"],
    "list": ["list"],
    "params regression": ["params", "regression"],
    "run nosuch (did you mean)": ["run", "nosuch"],
    "run regression --set lrr=1": ["run", "regression", "--set", "lrr=1"],
    "run regression --set lr=abc": ["run", "regression", "--set", "lr=abc"],
    "lesson --list": ["lesson", "--list"],
}
BASELINE = "python -c 'import torch'"


def seconds(command: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, capture_output=True)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    runs = {name: [sys.executable, "-m", "torchclassics", *cli] for name, cli in COMMANDS.items()}
    runs[BASELINE] = [sys.executable, "-c", "import torch"]
    times: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as empty:  # an empty folder: no ./experiments of a project
        for command in runs.values():  # warm the file cache
            seconds(command, empty)
        for round_no in range(args.repeats):
            order = list(runs) if round_no % 2 == 0 else list(reversed(runs))
            for name in order:
                times[name].append(seconds(runs[name], empty))
    base = statistics.median(times[BASELINE])
    print(f"{'command':<32} {'median s':>9} {'vs import torch':>16}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<32} {median:>9.3f} {median / base:>15.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

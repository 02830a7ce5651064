"""Image folders, read the same way on every machine.

Two layouts are recognised, whichever the folder has:

* Kaggle's Dogs vs Cats ``train/``: one folder of ``<class>.<n>.<ext>`` files
  (``cat.0.jpg``, ``dog.0.jpg``), the label being the prefix;
* torchvision's ImageFolder: one sub-folder per class (``root/cat/x.jpg``), any
  number of classes.

Every listing is sorted (the book's Dogs vs Cats code gave different results on
two machines because ``os.listdir`` order differs), the train/validation split
is a seeded permutation of that sorted list, and the augmentation of one sample
is seeded by (seed, epoch, sample), so the batches do not depend on the machine,
on the number of worker processes, or on whether a run was resumed.

Every file is decoded once before training (threads; large images reduced on their
8-bit pixels, JPEGs decoded at reduced scale; more than MAX_PIXELS refused from the
header; GIFs and TIFFs by their first frame): unreadable ones (truncated, zero bytes, not an
image, too large, a HEIC photo) and entries that cannot be looked at (links to nowhere or in a
loop, FIFOs, sub-folders that cannot be listed) are reported in one line and left out, and for a
small folder the decoded, resized pixels are kept in memory so that later epochs never touch the
disk again. The listing never follows a symbolic link out of the folder, never enters one folder
twice, and lists each file once, labelled where it lies (see :class:`_Walk`).
:meth:`ImageFolderData.check_readable` decodes one image per class before anything is written.

    folder = ImageFolderData(root, image_size=64, val_fraction=0.2, seed=0)
    folder.check_readable()          # cheap: a class without one decodable image is a UserError now
    train = ImageBatches(folder, "train", batch_size=32, device=device, augment=RandomCropFlip(64))
    for inputs, targets in train.epoch(1): ...

Worker processes (``num_workers > 0``) are started with "spawn": safe with threads and
CUDA, on every OS, at the price of a fresh interpreter per worker (1-4 s each here; paid
once per run, as the workers persist across epochs). As with any spawning DataLoader, a
plain script that uses them must keep its top-level code under
``if __name__ == "__main__":`` (the CLI and notebooks need nothing).
"""
from __future__ import annotations

import collections
import functools
import os
import re
import stat
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from ..core import messages
from ..core.errors import UserError
from .batches import epoch_generator, per_process_batch

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# Photos in formats not read here (PIL has no decoder for them, or it is left out: see FORMATS): named in
# the warning of skipped files rather than left out without a word.
UNREAD_PHOTOS = {".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".jxl": "JPEG XL"}
KAGGLE_NAME = re.compile(r"^(?P<label>[^.]+)\.(?P<number>\d+)\.(?P<ext>[^.]+)$")
# ImageNet statistics: what torchvision's pretrained weights expect, and a fine default for the rest.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LAYOUTS_HELP = (
    "Accepted layouts: Kaggle's (one folder of <class>.<n>.<ext> files, e.g. train/cat.0.jpg, train/dog.0.jpg) "
    "or torchvision's ImageFolder (one sub-folder per class, e.g. root/cat/*.jpg, root/dog/*.jpg)."
)
SHOWN_SKIPPED = 5  # how many skipped files the warning names
NOT_A_FILE = "not a regular file: a FIFO, socket or device"
FOLDER, FILE = "folder", "file"  # the kinds of directory entry a listing uses
# Why a symbolic link is left out of a listing
LINK_OUT = "a link out of data_root"
LINK_ABOVE = "a link to a folder above it"
FOLDER_AGAIN = "a link to a folder listed already"
FILE_AGAIN = "a link to a file listed already"


# -- listing ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageListing:
    """The labelled image files of a folder, in sorted order."""

    root: Path
    layout: str                      # "kaggle" or "imagefolder"
    classes: tuple[str, ...]         # sorted; a label is an index into it
    files: tuple[str, ...]           # paths relative to root, sorted
    labels: tuple[int, ...]
    unlabelled: tuple[str, ...] = ()  # image files whose name carries no class (Kaggle layout)
    unusable: tuple[tuple[str, str], ...] = ()  # (entry, why): what could not be looked at, named in the warning


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _printable(name: str) -> str:
    """A file name as it can be printed: bytes that are not UTF-8 written as \\xNN."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _sorted_entries(folder: Path) -> list[os.DirEntry]:
    """Visible entries sorted by name: the same order on every file system. OSError if it cannot be listed."""
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _kind(entry: os.DirEntry) -> str:
    """FOLDER, FILE (a regular file), or why the entry cannot be used."""
    if _printable(entry.name) != entry.name:  # not UTF-8: such a name cannot be printed or stored in JSON as it is
        return "name is not valid UTF-8"
    try:
        if entry.is_dir():
            return FOLDER
        if entry.is_file():
            return FILE
    except OSError as err:  # a symbolic link loop (ELOOP), a link into a folder we may not enter (EACCES)
        return err.strerror or type(err).__name__
    return "broken symbolic link" if entry.is_symlink() else NOT_A_FILE


def _relative(entry: os.DirEntry, root: Path) -> str:
    return _printable(Path(entry.path).relative_to(root).as_posix())


def _unread_photo(name: str) -> str | None:
    """Why a photo in a format this reader leaves out is left out (named in the warning), or None."""
    kind = UNREAD_PHOTOS.get(Path(name).suffix.lower())
    return f"{kind} photos are not read; convert it to JPEG or PNG" if kind else None


def _listing_order(name: str) -> list[str]:
    """Sorted by this key, names come in the order of a walk that sorts each folder's entries by name."""
    return name.split("/")


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


class _Walk:
    """One listing's walk of a folder tree, labelling each image file with the class it lies in.

    The real tree is walked first, following no symbolic link; the links met are put aside and
    followed afterwards, in the order met, and only where they stay inside the root and lead to a
    folder not entered yet or a file not listed yet. So nothing outside the root is listed, every
    folder is entered once and every file listed once, and a file is labelled where it really lies:
    ``cat/dogs -> ../dog`` cannot take dog's photos, although "cat" sorts first. A link to a folder
    that nothing else lists (a hidden one) is followed: its files are listed once, under the class of
    the first link to it. Left-out entries are kept in ``unusable`` with the reason."""

    def __init__(self, root: Path):
        self.root, self.real_root = root, root.resolve()
        self.unusable: list[tuple[str, str]] = []
        self.found: dict[str, list[str]] = {}           # label -> image files, relative to root
        self.entered = {_identity(root.stat())}           # folders, by device and inode
        self.listed: set[Path] = set()                    # files, by real path
        self.links: collections.deque = collections.deque()  # (link, its relative name, label, is a class)

    def files(self, label: str) -> list[str]:
        return sorted(self.found.get(label, []), key=_listing_order)

    def folder(self, path: Path, real: Path, label: str, sub_folders: bool = True) -> None:
        """List ``path`` (whose real path is ``real``) under ``label``; links are put aside. OSError if
        ``path`` itself cannot be listed."""
        self.entered.add(_identity(path.stat()))
        for entry in _sorted_entries(path):
            kind, name = _kind(entry), _relative(entry, self.root)
            if kind == FOLDER and not sub_folders or kind == FILE and not _wanted(entry.name):
                continue
            if kind not in (FILE, FOLDER):
                self.unusable.append((name, kind))
            elif entry.is_symlink():
                self.links.append((entry, name, label, False))
            elif kind == FILE:
                self._file(entry.name, name, real / entry.name, label)
            else:
                self._sub_folder(Path(entry.path), real / entry.name, name, label)

    def _file(self, file_name: str, name: str, real: Path, label: str) -> None:
        why = _unread_photo(file_name)
        if why:
            self.unusable.append((name, why))
        else:
            self.listed.add(real)
            self.found.setdefault(label, []).append(name)

    def _sub_folder(self, path: Path, real: Path, name: str, label: str) -> None:
        try:
            if _identity(path.stat()) in self.entered:  # a bind mount of a folder listed already
                self.unusable.append((name, "the same folder as one listed already"))
            else:
                self.folder(path, real, label)
        except OSError as err:
            self.unusable.append((name, f"cannot list: {err.strerror or type(err).__name__}"))

    def follow_links(self) -> None:
        """Follow the links put aside, and those met on the way, in the order met."""
        while self.links:
            entry, name, label, is_class = self.links.popleft()
            why = self._follow(entry, name, label, is_class)
            if why:
                self.unusable.append((name, why))

    def _follow(self, entry: os.DirEntry, name: str, label: str, is_class: bool) -> str | None:
        """Why the link ``entry`` is left out, or None once what it leads to is listed."""
        target = Path(os.path.realpath(entry.path))
        if not target.is_relative_to(self.real_root):
            return LINK_OUT
        if _kind(entry) == FILE:
            if target in self.listed:
                return FILE_AGAIN
            self._file(entry.name, name, target, label)
            return None
        try:
            if _identity(os.stat(entry.path)) in self.entered:
                above = Path(os.path.realpath(Path(entry.path).parent)).is_relative_to(target)
                return LINK_ABOVE if above else FOLDER_AGAIN
            self.folder(Path(entry.path), target, label)
        except OSError as err:
            if is_class:
                raise _cannot_list_class(self.root, entry, err) from None
            return f"cannot list: {err.strerror or type(err).__name__}"
        return None


def _wanted(name: str) -> bool:
    """An image file, or a photo in a format left out (which the warning names)."""
    return is_image_name(name) or _unread_photo(name) is not None


def _left_out(unusable) -> str:
    """For an error about what a folder holds: what the listing left out, which may be the cause."""
    unusable = list(unusable)
    if not unusable:
        return ""
    return " Left out: " + "; ".join(f"{name} ({why})" for name, why in list(unusable)[:SHOWN_SKIPPED]) + "."


def _kaggle_listing(root: Path) -> ImageListing:
    """The image files at the top of ``root``, labelled by their names (sub-folders are not Kaggle's)."""
    walk = _Walk(root)
    walk.folder(root, walk.real_root, "", sub_folders=False)
    walk.follow_links()
    labelled = [(name, KAGGLE_NAME.match(name)) for name in walk.files("")]
    classes = tuple(sorted({m["label"] for _, m in labelled if m}))
    index = {label: k for k, label in enumerate(classes)}
    files = tuple(name for name, m in labelled if m)
    labels = tuple(index[m["label"]] for _, m in labelled if m)
    unlabelled = tuple(name for name, m in labelled if not m)
    return ImageListing(root, "kaggle", classes, files, labels, unlabelled, tuple(walk.unusable))


def _looks_like_kaggle_parent(root: Path, class_files: dict[str, list[str]]) -> str | None:
    """The folder above Kaggle's train/ (train/ and test1/ side by side) would pass for an
    ImageFolder with classes 'test1' and 'train'; name the sub-folder meant instead."""
    for name, files in class_files.items():
        prefixes = {m["label"] for f in files if (m := KAGGLE_NAME.match(Path(f).name))}
        if len(prefixes) >= 2:
            return name
    return None


def _cannot_list_class(root: Path, class_dir: os.DirEntry, err: OSError) -> UserError:
    return UserError(f"cannot list the class folder {class_dir.path}: {err.strerror or err}. Make it "
                     f"readable, or move it out of data_root={root}.")


def _walk_classes(root: Path, class_dirs: list[os.DirEntry]) -> _Walk:
    """Every class folder walked; a class folder that is a link is followed after the real ones."""
    walk = _Walk(root)
    for class_dir in class_dirs:
        if class_dir.is_symlink():
            walk.links.append((class_dir, class_dir.name, class_dir.name, True))
            continue
        try:
            walk.folder(Path(class_dir.path), walk.real_root / class_dir.name, class_dir.name)
        except OSError as err:
            raise _cannot_list_class(root, class_dir, err) from None
    walk.follow_links()
    return walk


def _imagefolder_listing(root: Path, class_dirs: list[os.DirEntry], unusable: list) -> ImageListing:
    walk = _walk_classes(root, class_dirs)
    unusable = unusable + walk.unusable
    left_out = {name for name, _ in walk.unusable}
    class_files = {d.name: walk.files(d.name) for d in class_dirs if d.name not in left_out}
    kaggle_inside = _looks_like_kaggle_parent(root, class_files)
    if kaggle_inside:
        raise UserError(f"data_root={root} looks like the folder above Kaggle's train folder: "
                        f"{root / kaggle_inside} holds <class>.<n>.<ext> files. "
                        f"Set data_root={root / kaggle_inside}.")
    empty = [name for name, files in class_files.items() if not files]
    if empty:
        raise UserError(f"class folder {root / empty[0]} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                        f"add images or remove the folder. Empty classes: {', '.join(empty)}."
                        f"{_left_out(u for u in unusable if u[0].split('/')[0] in empty)}")
    classes = tuple(class_files)
    files = tuple(f for name in classes for f in class_files[name])
    labels = tuple(k for k, name in enumerate(classes) for _ in class_files[name])
    return ImageListing(root, "imagefolder", classes, files, labels, unusable=tuple(unusable))


def list_image_folder(root) -> ImageListing:
    """The labelled images of ``root``, its layout detected; a UserError for anything else.
    Entries that cannot be used (links to nowhere, in a loop or out of ``root``, links to what is
    listed already, FIFOs, sub-folders that cannot be listed, photos in formats not read) are left
    out and kept in ``unusable``; they never stop the listing."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"data_root={root}: no such folder. {LAYOUTS_HELP}")
    try:
        entries = [(entry, _kind(entry)) for entry in _sorted_entries(root)]
    except OSError as err:
        raise UserError(f"cannot list data_root={root}: {err.strerror or err}.") from None
    top_images = [e.name for e, kind in entries if kind == FILE and is_image_name(e.name)]
    class_dirs = [e for e, kind in entries if kind == FOLDER]
    unusable = [(_printable(e.name), kind) for e, kind in entries if kind not in (FILE, FOLDER)]
    try:
        if any(KAGGLE_NAME.match(name) for name in top_images):
            listing = _kaggle_listing(root)
        elif class_dirs:
            listing = _imagefolder_listing(root, class_dirs, unusable)
        elif top_images:
            raise UserError(f"data_root={root}: its images (e.g. {top_images[0]}) carry no class: neither named "
                            f"<class>.<n>.<ext> nor in one sub-folder per class. {LAYOUTS_HELP}")
        else:
            raise UserError(f"data_root={root} holds no images ({', '.join(IMAGE_EXTENSIONS)}). {LAYOUTS_HELP}"
                            f"{_left_out(unusable)}")
    except OSError as err:  # the root itself, listed again by the walk, changed under it
        raise UserError(f"cannot list data_root={root}: {err.strerror or err}.") from None
    if len(listing.classes) < 2:
        found = f"only the class '{listing.classes[0]}'" if listing.classes else "no class"
        raise UserError(f"data_root={root}: found {found}; a classifier needs at least two. {LAYOUTS_HELP}"
                        f"{_left_out(listing.unusable)}")
    return listing


def split_indices(labels, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded, stratified train/validation split of a sorted listing: indices, each part sorted.

    Each class gives ``round(val_fraction * n)`` of its files (at least one, and at least one
    stays for training) to validation."""
    labels = torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(seed)
    val = []
    for label in range(int(labels.max()) + 1 if len(labels) else 0):
        members = torch.nonzero(labels == label).flatten()
        if len(members) < 2:
            continue
        n_val = min(max(round(val_fraction * len(members)), 1), len(members) - 1)
        val.extend(members[torch.randperm(len(members), generator=generator)[:n_val]].tolist())
    val_set = set(val)
    return [i for i in range(len(labels)) if i not in val_set], sorted(val)


# -- decoding --------------------------------------------------------------------------------------
# Our own decompression-bomb limit, read from the header before anything is decoded: 64 megapixels
# hold any phone's photo (48 MP) and cost at most 256 MB as 8-bit RGBA. PIL's limit (89 MP, a
# process-wide setting other code may rely on) is left alone.
MAX_PIXELS = 64_000_000
# The formats read. Leaving out PIL's other readers keeps their parsers (and EPS's hand-off to
# Ghostscript) away from files that come from anywhere.
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "PPM", "TIFF", "WEBP")
NOT_AN_IMAGE = "not an image (JPEG, PNG, GIF, BMP, PPM, TIFF or WebP expected)"
# warnings.catch_warnings swaps the process's warning filters: one thread at a time.
_WARNING_FILTERS = threading.Lock()


class UnusableImage(ValueError):
    """This file cannot be used as an image; the message says why in one line, without the path."""


def _too_large(size: str) -> UnusableImage:
    return UnusableImage(f"image of {size}, over the limit of {MAX_PIXELS // 10 ** 6} megapixels; scale it down")


def _check_regular_file(path: Path) -> None:
    """Before opening: a FIFO or a device would block or never end, a folder is a mistake."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UnusableImage("no such file") from None
    except OSError as err:  # permission denied on the way, a symbolic link loop
        raise UnusableImage(err.strerror or type(err).__name__) from None
    if stat.S_ISDIR(mode):
        raise UnusableImage("a folder, not an image")
    if not stat.S_ISREG(mode):
        raise UnusableImage(NOT_A_FILE)


def _open_within_limit(path: Path) -> Image.Image:
    """``Image.open`` (reads the header only), refusing an image of more than MAX_PIXELS."""
    with _WARNING_FILTERS, warnings.catch_warnings():
        # Above PIL's own limit PIL warns (and refuses at twice it); ours is lower, so both mean
        # "too large": the warning becomes an error here, in this call alone.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path, formats=FORMATS)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
            pixels = re.search(r"\d+", str(err))  # PIL's message gives the pixel count, not the sides
            raise _too_large(f"{int(pixels[0]):,} pixels" if pixels else "more pixels than PIL allows") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise _too_large(f"{width} x {height} pixels")
    return image


def _reducible(image: Image.Image) -> Image.Image:
    """``image`` in a mode that ``Image.reduce`` takes and callers need not special-case:
    L, LA, RGB, RGBA (8 bits), or I, F (16- and 32-bit grey)."""
    if image.mode in ("L", "LA", "RGB", "RGBA", "I", "F"):
        return image
    if image.mode == "1":
        return image.convert("L")
    if image.mode.startswith("I;16"):
        return image.convert("I")
    if image.mode in ("PA", "La", "RGBa") or "transparency" in image.info:
        return image.convert("RGBA")
    return image.convert("RGB")  # palette, CMYK, YCbCr, LAB, HSV


def _eight_bit(image: Image.Image) -> Image.Image:
    """16- or 32-bit grey as 8-bit, the brightest pixel at 255 (such scans have no fixed white)."""
    if image.mode not in ("I", "F"):
        return image
    top = image.getextrema()[1]
    scale = 255 / top if top > 0 else 1.0
    return image.point(lambda value: value * scale).convert("L")


def _reduction(size: tuple[int, int], min_side: int, max_side: int | None = None) -> int:
    """The largest whole factor that keeps the shorter side >= ``min_side``; larger if the longer
    side would still exceed ``max_side``."""
    factor = min(size) // min_side
    if max_side:
        factor = max(factor, -(-max(size) // max_side))
    return max(factor, 1)


def open_image(path, min_side: int, max_side: int | None = None) -> Image.Image:
    """The picture in ``path`` as an 8-bit L, LA, RGB or RGBA image: the first frame, upright (EXIF
    orientation applied), reduced by :func:`_reduction` (a box filter on the decoded 8-bit pixels, so
    no full-size copy in a wider type is ever made; JPEGs are decoded at 1/2, 1/4 or 1/8 scale).

    Raises :class:`UnusableImage` for every failure of this one file, the bomb included: an image
    of more than MAX_PIXELS is refused from its header, before any decoding."""
    path = Path(path)
    _check_regular_file(path)
    try:
        with _open_within_limit(path) as original:
            original.draft(None, (min_side, min_side))  # JPEG: a smaller scale while still >= min_side
            ImageOps.exif_transpose(original, in_place=True)  # decodes; a truncated file raises here
            image = _reducible(original)
            factor = _reduction(image.size, min_side, max_side)
            # A new image even at factor 1: closing the file below empties the original.
            image = image.reduce(factor) if factor > 1 else image.copy()
        return _eight_bit(image)
    except UnusableImage:
        raise
    except UnidentifiedImageError:
        raise UnusableImage(NOT_AN_IMAGE) from None
    except Exception as err:  # truncated or corrupt: whatever a decoder raises is this file's failure
        if isinstance(err, OSError) and err.strerror:  # the system's refusal (permission denied, I/O error)
            raise UnusableImage(err.strerror) from None
        raise UnusableImage(f"unreadable image: {why_unreadable(err, path)}") from None


def load_image(path, size: int) -> torch.Tensor:
    """One image file as a ``3 x size x size`` uint8 tensor: shorter side resized to ``size``,
    centre crop. Training, evaluation and predict all read pixels through here.
    Raises :class:`UnusableImage`."""
    image = open_image(path, min_side=size).convert("RGB")
    image = ImageOps.fit(image, (size, size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()


def why_unreadable(err: Exception, path) -> str:
    """The decoder's message, short, on one line, without the path (the warning names the file)."""
    text = " ".join(str(err).replace(f" '{path}'", "").replace(str(path), "").split())
    return (text or type(err).__name__)[:80]


@dataclass
class ScanResult:
    readable: list[bool]                 # per file of the listing
    skipped: list[tuple[str, str]]       # (file, reason), listing order
    pixels: torch.Tensor | None = None   # N x 3 x S x S uint8 when cached (rows of unreadable files are zero)


def scan_files(root: Path, files, size: int, keep_pixels: bool, threads: int | None = None) -> ScanResult:
    """Decode every file once, in threads (PIL releases the GIL while decoding)."""
    pixels = torch.zeros(len(files), 3, size, size, dtype=torch.uint8) if keep_pixels else None

    def decode(index: int):
        try:
            image = load_image(root / files[index], size)
        except Exception as err:  # UnusableImage; anything else is still this file's failure, not the scan's
            return why_unreadable(err, root / files[index])
        if pixels is not None:
            pixels[index] = image
        return None

    threads = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        reasons = list(tqdm(pool.map(decode, range(len(files))), total=len(files), desc="reading images",
                            unit="img", leave=False, disable=None if len(files) > 2000 else True))
    skipped = [(files[i], why) for i, why in enumerate(reasons) if why is not None]
    return ScanResult([why is None for why in reasons], skipped, pixels)


def warn_skipped(root: Path, skipped: list[tuple[str, str]], total: int) -> None:
    """One warning line: how many files were left out, and the first few by name."""
    if not skipped:
        return
    named = "; ".join(f"{name} ({why})" for name, why in skipped[:SHOWN_SKIPPED])
    more = f"; and {len(skipped) - SHOWN_SKIPPED} more" if len(skipped) > SHOWN_SKIPPED else ""
    messages.warn(f"skipped {len(skipped)} of {total} files in {root} that cannot be used: {named}{more}")


# -- one folder, split -----------------------------------------------------------------------------
class ImageFolderData:
    """An image folder, listed and split on first use, decoded once on first use of its pixels.

    ``cache``: keep the decoded pixels in memory when they take at most ``cache_max_mb``."""

    def __init__(self, root, image_size: int, val_fraction: float, seed: int,
                 cache: bool = True, cache_max_mb: float = 1024, expected_classes=None):
        self.root = Path(root).expanduser()
        self.image_size, self.val_fraction, self.seed = image_size, val_fraction, seed
        self.cache, self.cache_max_mb = cache, cache_max_mb
        self.expected_classes = tuple(expected_classes) if expected_classes is not None else None

    @functools.cached_property
    def listing(self) -> ImageListing:
        listing = list_image_folder(self.root)
        if self.expected_classes is not None and listing.classes != self.expected_classes:
            raise UserError(f"data_root={self.root} now holds the classes {', '.join(listing.classes)}; the run "
                            f"was trained on {', '.join(self.expected_classes)}. Point data_root at its data.")
        return listing

    @functools.cached_property
    def parts(self) -> dict[str, list[int]]:
        train, val = split_indices(self.listing.labels, self.val_fraction, self.seed)
        return {"train": train, "val": val}

    @property
    def classes(self) -> tuple[str, ...]:
        return self.listing.classes

    @property
    def cached(self) -> bool:
        megabytes = len(self.listing.files) * 3 * self.image_size ** 2 / 2 ** 20
        return self.cache and megabytes <= self.cache_max_mb

    @functools.cached_property
    def scan(self) -> ScanResult:
        listing = self.listing
        result = scan_files(listing.root, listing.files, self.image_size, keep_pixels=self.cached)
        skipped = ([(name, "no <class>.<n> in the name") for name in listing.unlabelled] + list(listing.unusable)
                   + result.skipped)
        warn_skipped(listing.root, skipped, len(listing.files) + len(listing.unlabelled) + len(listing.unusable))
        result.skipped = skipped
        self._check_parts(result.readable.__getitem__)
        return result

    def _check_parts(self, readable) -> None:
        """Every class must have training images, and there must be something to validate on.
        ``readable(i)`` says whether file ``i`` of the listing decodes; it is asked in listing order,
        and no more than needed."""
        labels = self.listing.labels
        missing = [name for k, name in enumerate(self.classes)
                   if not any(readable(i) for i in self.parts["train"] if labels[i] == k)]
        if missing:
            raise UserError(f"data_root={self.root}: no readable training image of class "
                            f"{', '.join(repr(m) for m in missing)}; every class needs some.")
        if not any(readable(i) for i in self.parts["val"]):
            raise UserError(f"data_root={self.root}: no readable image left for validation; "
                            "give each class at least two readable images.")

    def check_readable(self) -> None:
        """What the scan will insist on, checked cheaply before anything is written: one training image
        of every class and one validation image decode, or a UserError says which class lacks one.
        A healthy folder costs one decoded file per class and one more; the scan reads every file later."""
        if "scan" in self.__dict__:
            return self._check_parts(self.scan.readable.__getitem__)
        self._check_parts(self._decodes)

    def _decodes(self, index: int) -> bool:
        try:
            load_image(self.listing.root / self.listing.files[index], self.image_size)
        except Exception:  # UnusableImage, or whatever else a decoder raises: this file's failure
            return False
        return True

    def indices(self, part: str) -> list[int]:
        """Listing indices of the readable files of ``part`` ("train" or "val")."""
        readable = self.scan.readable
        return [i for i in self.parts[part] if readable[i]]

    def dataset(self, part: str, augment=None) -> ImageDataset:
        listing = self.listing
        return ImageDataset(listing.root, listing.files, listing.labels, self.indices(part), self.image_size,
                            self.scan.pixels, augment)

    def summary(self) -> dict:
        """What the run's summary keeps about the data."""
        return {
            "data_root": str(self.root),
            "layout": self.listing.layout,
            "classes": list(self.classes),
            "n_train": len(self.indices("train")),
            "n_val": len(self.indices("val")),
            "images_cached": self.scan.pixels is not None,
            "skipped_files": len(self.scan.skipped),
            "skipped_examples": [f"{name} ({why})" for name, why in self.scan.skipped[:SHOWN_SKIPPED]],
        }


# -- samples, augmentation, batches ------------------------------------------------------------------
def normalise(pixels: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 images ``B x 3 x H x W`` -> floats with the channel statistics removed. Done per batch on
    the device, after the copy: bytes are 4x less to move than floats."""
    mean = torch.as_tensor(mean, device=pixels.device).view(1, 3, 1, 1)
    std = torch.as_tensor(std, device=pixels.device).view(1, 3, 1, 1)
    return (pixels.float().div_(255) - mean) / std


class RandomCropFlip:
    """Train-time augmentation of one uint8 image tensor (torchvision.transforms.v2), seeded per sample:
    the same (seed, epoch, sample) gives the same crop in any process, so worker count does not matter."""

    def __init__(self, size: int, scale=(0.5, 1.0)):
        # Imported here: torchvision costs 165 MB and seconds, which reading a digit file should not pay.
        from torchvision.transforms import v2

        self.transform = v2.Compose([v2.RandomResizedCrop(size, scale=tuple(scale), antialias=True),
                                     v2.RandomHorizontalFlip()])

    def __call__(self, pixels: torch.Tensor, seed: int) -> torch.Tensor:
        # v2 transforms draw from the global CPU generator: fork it so training's own draws are
        # untouched. (torch.manual_seed would also seed every accelerator: 100x slower.)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            return self.transform(pixels)


class ImageDataset(Dataset):
    """Map-style dataset of (uint8 image, label) over the ``rows`` of a listing; items are
    ``(index, sample_seed)`` pairs.

    Top-level and made of plain values, so worker processes started with "spawn" can
    unpickle it (a cached pixel tensor travels as shared memory, not as a copy). Pixels
    come from memory when cached, else from the file."""

    def __init__(self, root: Path, files, labels, rows: list[int], size: int,
                 pixels: torch.Tensor | None = None, augment=None):
        self.root, self.files, self.labels, self.rows = Path(root), files, labels, rows
        self.size, self.pixels, self.augment = size, pixels, augment

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item):
        index, sample_seed = item
        row = self.rows[index]
        if self.pixels is not None:
            image = self.pixels[row]
        else:
            try:
                image = load_image(self.root / self.files[row], self.size)
            except Exception:  # changed on disk since the scan: the batch goes on without it
                return None
        if self.augment is not None:
            image = self.augment(image, sample_seed)
        return image, self.labels[row]


def collate_readable(samples):
    """Stack (image, label) pairs, leaving out the samples that could not be read."""
    samples = [s for s in samples if s is not None]
    if not samples:
        return None
    return torch.stack([s[0] for s in samples]), torch.tensor([s[1] for s in samples])


class SeededSampler(Sampler):
    """Yields ``(index, sample_seed)``: a permutation drawn from (seed, epoch) alone, and per-sample
    augmentation seeds that depend on the sample, not on its position or on sharding."""

    def __init__(self, n: int, seed: int, shuffle: bool):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch, self.rank, self.world = 0, 0, 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.world

    def __iter__(self):
        generator = epoch_generator(self.seed, self.epoch)
        order = torch.randperm(self.n, generator=generator) if self.shuffle else torch.arange(self.n)
        seeds = torch.randint(0, 2 ** 62, (self.n,), generator=generator)
        if self.world > 1:
            order = order[: self.n - self.n % self.world][self.rank :: self.world]
        return iter([(i, int(seeds[i])) for i in order.tolist()])


class ImageBatches:
    """The engine's data interface over a DataLoader: ``.epoch(n)`` yields normalised float
    images and labels on ``device``; ``len()`` is batches per epoch; ``.n_samples``; ``.shard``.

    Nothing is read until the first use, so building a Task (e.g. to predict) stays cheap."""

    def __init__(self, folder: ImageFolderData, part: str, batch_size: int, device, *, shuffle: bool = False,
                 seed: int = 0, augment=None, num_workers: int = 0, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.folder, self.part, self.batch_size = folder, part, batch_size
        self.device = torch.device(device)
        self.shuffle, self.seed, self.augment, self.num_workers = shuffle, seed, augment, num_workers
        self.mean = torch.tensor(mean).view(1, 3, 1, 1).to(self.device)
        self.std = torch.tensor(std).view(1, 3, 1, 1).to(self.device)
        self.rank, self.world = 0, 1

    @functools.cached_property
    def dataset(self) -> ImageDataset:
        return self.folder.dataset(self.part, self.augment)

    @functools.cached_property
    def sampler(self) -> SeededSampler:
        sampler = SeededSampler(len(self.dataset), self.seed, self.shuffle)
        sampler.rank, sampler.world = self.rank, self.world
        return sampler

    @functools.cached_property
    def loader(self) -> DataLoader:
        # Workers share out per-sample work: decoding, augmenting. Pixels held in memory and
        # not augmented leave them nothing to do but their start-up.
        idle = self.dataset.pixels is not None and self.augment is None
        workers = 0 if idle else self.num_workers
        return DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=self.sampler, collate_fn=collate_readable,
            num_workers=workers, pin_memory=self.device.type == "cuda",
            # spawn: a fresh interpreter per worker, safe with threads and CUDA (fork is not);
            # persistent: that start-up is paid once per run, not once per epoch.
            multiprocessing_context="spawn" if workers > 0 else None, persistent_workers=workers > 0,
        )

    @property
    def n_samples(self) -> int:
        return len(self.sampler)

    def __len__(self) -> int:
        return -(-self.n_samples // self.batch_size)

    def shard(self, rank: int, world: int) -> ImageBatches:
        """Under DDP each process takes every ``world``-th sample of the same permutation, in batches
        of ``batch_size / world`` (``batch_size`` is the global batch, as for TensorBatches)."""
        self.batch_size = per_process_batch(self.batch_size, world)
        self.rank, self.world = rank, world
        if "sampler" in self.__dict__:
            self.sampler.rank, self.sampler.world = rank, world
        return self

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        return normalise(pixels, self.mean, self.std)

    def epoch(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.set_epoch(epoch)
        for batch in self.loader:
            if batch is None:  # every file of the batch vanished since the scan
                continue
            pixels, labels = batch
            yield (self.normalise(pixels.to(self.device, non_blocking=True)),
                   labels.to(self.device, non_blocking=True))

"""Fault tests: hostile and huge image files, and image folders with entries that cannot be read.

The promise under test: one bad file (or folder entry) is that file's error only. It gets
one clear reason, every other file still gets its answer, a listing goes on past it, and
a decompression bomb is refused from its header before any pixel is decoded.

To add a case, add a writer to ODD_BUT_USABLE (a file that must still be read right) or to
UNUSABLE (a file that must be refused, with the words its reason must hold).
"""
import logging
import os
import signal
import struct
import tracemalloc
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from torch import nn

from torchclassics.core import messages
from torchclassics.data import images, shapes
from torchclassics.data.digits import DigitError, load_digit
from torchclassics.data.images import (
    MAX_PIXELS,
    ImageFolderData,
    UnusableImage,
    list_image_folder,
    load_image,
    open_image,
)
from torchclassics.errors import UserError
from torchclassics.experiments.cnn_mnist import CnnMnist
from torchclassics.experiments.dogs_vs_cats import DogsVsCats

pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs, symbolic links and SIGALRM are POSIX's")
AS_ROOT = os.name == "posix" and os.geteuid() == 0
needs_permissions = pytest.mark.skipif(AS_ROOT, reason="root reads and lists everything, whatever the mode")


# -- files a user might hand us ----------------------------------------------------------------------
def png_claiming(path: Path, width: int, height: int, pixels: bool = True) -> Path:
    """A real 1-bit PNG of width x height black pixels: tens of kB on disk (rows of zeros compress
    1000:1), width x height bytes once decoded. ``pixels=False``: the header alone, so anything
    that decodes it fails as truncated, and only a refusal from the header reads "over the limit"."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    data = b""
    if pixels:
        row, compressor = bytes(1 + -(-width // 8)), zlib.compressobj(1)  # filter byte + 8 pixels a byte
        data = b"".join(compressor.compress(row * 256) for _ in range(height // 256))
        data += compressor.compress(row * (height % 256)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey, no interlace
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def bar(width: int = 60, height: int = 80, vertical: bool = True) -> Image.Image:
    """A white bar (a "1") on black: which way it lies shows which frame or orientation was read."""
    image = Image.new("L", (width, height), 0)
    box = (0.4 * width, 0.1 * height, 0.6 * width, 0.9 * height) if vertical else \
        (0.1 * width, 0.4 * height, 0.9 * width, 0.6 * height)
    ImageDraw.Draw(image).rectangle(box, fill=255)
    return image


def stands_upright(grey: np.ndarray) -> bool:
    """True when the ink (whatever its polarity) is a vertical bar: the centre column crosses more ink
    than the centre row."""
    ink = np.abs(grey.astype(float) - np.median(np.concatenate([grey[0], grey[-1]])))
    height, width = ink.shape
    return ink[:, width // 2].mean() > ink[height // 2, :].mean() + 50


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def palette_with_transparency(path: Path) -> Path:
    """Black ink on a transparent background (index 0), as drawing apps export: read over white paper."""
    image = Image.new("P", (60, 80), 0)
    image.putpalette([255, 255, 255, 0, 0, 0])
    image.paste(1, mask=bar())
    return save(image, path, transparency=0)


def exif_rotated(path: Path) -> Path:
    """The bar stored lying down, with EXIF orientation 6 ("rotate 90 degrees to view"): upright once applied."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(bar().transpose(Image.Transpose.ROTATE_90), path, exif=exif, quality=95)


def sixteen_bit(path: Path) -> Path:
    """A 16-bit grey PNG (scanners, microscopes) whose brightest pixel is 1/16 of full scale."""
    return save(Image.fromarray(np.asarray(bar(), dtype=np.uint16) * 16), path)


# name -> writer of a file that must be read, first frame and right way up (the upright bar)
ODD_BUT_USABLE = {
    "animated.gif": lambda p: save(bar(), p, save_all=True, append_images=[bar(vertical=False)]),
    "pages.tif": lambda p: save(bar(), p, save_all=True, append_images=[bar(vertical=False)]),
    "sixteen-bit.png": sixteen_bit,
    "cmyk.jpg": lambda p: save(bar().convert("CMYK"), p, quality=95),
    "palette-transparent.png": palette_with_transparency,
    "exif-rotated.jpg": exif_rotated,
    "one-bit.bmp": lambda p: save(bar().convert("1"), p),
}

# name -> (writer, words the one-line reason must hold)
LIMIT = f"over the limit of {MAX_PIXELS // 10 ** 6} megapixels"
UNUSABLE = {
    "truncated.png": (lambda p: p.write_bytes(save(bar(), p).read_bytes()[:70]), "unreadable image"),
    "zero-bytes.jpg": (lambda p: p.write_bytes(b""), "not an image"),
    "text.png": (lambda p: p.write_text("not a picture\n"), "not an image"),
    "over-our-limit.png": (lambda p: png_claiming(p, 8500, 8000), f"8500 x 8000 pixels, {LIMIT}"),
    "pil-warns.png": (lambda p: png_claiming(p, 10000, 10000), f"100,000,000 pixels, {LIMIT}"),
    "pil-refuses.png": (lambda p: png_claiming(p, 14000, 13000), f"182,000,000 pixels, {LIMIT}"),
    "header-only.png": (lambda p: png_claiming(p, 9000, 9000, pixels=False), f"9000 x 9000 pixels, {LIMIT}"),
    "a-folder.png": (lambda p: p.mkdir(), "a folder"),
    "fifo.png": (lambda p: os.mkfifo(p), "not a regular file"),
}


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd")
    return {name: write(folder / name) for name, write in ODD_BUT_USABLE.items()}


@pytest.fixture(scope="module")
def unusable(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unusable")
    for name, (write, _) in UNUSABLE.items():
        write(folder / name)
    return {name: folder / name for name in UNUSABLE}


@contextmanager
def no_hanging(seconds: int = 20):
    """Opening a FIFO for reading waits for a writer forever: fail the test instead of the CI job."""
    def hung(*_):
        raise TimeoutError(f"still blocked after {seconds} s (a FIFO opened for reading?)")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- one file ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ODD_BUT_USABLE)
def test_odd_files_are_read_first_frame_and_right_way_up(odd, name):
    assert stands_upright(load_digit(odd[name]).numpy()), name
    assert stands_upright(load_image(odd[name], 32).float().mean(0).numpy()), name


@pytest.mark.parametrize("name", UNUSABLE)
def test_an_unusable_file_gets_its_own_one_line_reason(unusable, name):
    why = UNUSABLE[name][1]
    with no_hanging():
        with pytest.raises(UnusableImage, match=why) as err:
            load_image(unusable[name], 32)
        assert "\n" not in str(err.value) and str(unusable[name]) not in str(err.value)
        with pytest.raises(DigitError, match=why):  # the only exception MNIST's predict loop catches
            load_digit(unusable[name])


def test_bombs_are_refused_without_pils_warning_or_its_global_limit_changed(unusable):
    pil_limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("pil-warns.png", "pil-refuses.png"):
            with pytest.raises(UnusableImage, match=LIMIT):
                load_image(unusable[name], 32)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert Image.MAX_IMAGE_PIXELS == pil_limit
    with pytest.warns(Image.DecompressionBombWarning):  # PIL alone still warns: its setting is intact
        Image.open(unusable["pil-warns.png"]).close()


@needs_permissions
def test_an_unreadable_file_says_permission_denied(tmp_path):
    path = save(bar(), tmp_path / "locked.png")
    path.chmod(0)
    with pytest.raises(UnusableImage, match="Permission denied"):
        load_image(path, 32)


def seven(width: int, height: int) -> Image.Image:
    """A dark hand-drawn 7 on light paper, most of the picture."""
    image = Image.new("RGB", (width, height), (235, 230, 220))
    points = [(0.3 * width, 0.25 * height), (0.7 * width, 0.25 * height), (0.45 * width, 0.85 * height)]
    ImageDraw.Draw(image).line(points, fill=(30, 30, 40), width=max(1, width // 40), joint="curve")
    return image


def test_a_large_photo_reads_as_the_same_digit_as_a_small_one(tmp_path):
    small = load_digit(save(seven(200, 150), tmp_path / "small.jpg")).numpy().ravel()
    large = load_digit(save(seven(4000, 3000), tmp_path / "large.jpg", quality=90)).numpy().ravel()
    assert np.corrcoef(small, large)[0, 1] > 0.9


def test_a_large_legal_image_is_reduced_before_any_float_copy(tmp_path):
    """The old digit path made several full-size float64 copies: 128 MB each at 4000 x 4000."""
    path = save(seven(4000, 4000).convert("L"), tmp_path / "large.png", compress_level=1)
    tracemalloc.start()  # numpy reports its arrays to tracemalloc
    try:
        digit = load_digit(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digit.shape == (28, 28) and int(digit.max()) > 200  # the ink was found
    assert peak < 4000 * 4000  # less than one full-size array of even one byte a pixel
    assert open_image(path, min_side=512).size == (572, 572)  # reduced 7x (rounded up) on the 8-bit pixels


# -- the predict loops: every file answered -----------------------------------------------------------
def finished_with(experiment, model, params: dict, record: dict | None = None):
    """A finished run around an untrained ``model``: what predict reads (the answers' existence is tested)."""
    import torch

    from torchclassics.engine.loop import Task
    from torchclassics.experiments.finished import MAIN, FinishedRun, Part

    task = Task(model=model, train=None, test=None, record=dict(record or {}))
    return FinishedRun(experiment, params, Path("."), torch.device("cpu"), {MAIN: Part(task, params)})


def test_mnist_predict_answers_every_file_past_a_bomb(unusable, odd, tmp_path):
    files = [unusable["pil-refuses.png"], odd["cmyk.jpg"], unusable["fifo.png"],
             save(seven(600, 450), tmp_path / "7.png"), unusable["truncated.png"], tmp_path / "missing.png"]
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))  # untrained: the answers' existence is tested
    with no_hanging():
        rows = CnnMnist().predict(finished_with(CnnMnist(), model, {}), files)
    assert [row["file"] for row in rows] == [str(f) for f in files]
    assert LIMIT in rows[0]["error"] and "not a regular file" in rows[2]["error"]
    assert "unreadable image" in rows[4]["error"] and rows[5]["error"] == "no such file"
    assert all(0 <= rows[k]["label"] <= 9 for k in (1, 3))


def test_dogs_vs_cats_predict_answers_every_file_past_a_bomb(unusable, odd):
    experiment = DogsVsCats()
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    files = [unusable["header-only.png"], odd["animated.gif"], unusable["zero-bytes.jpg"], odd["exif-rotated.jpg"]]
    rows = experiment.predict(finished_with(experiment, model, {"image_size": 32}, {"classes": ["cat", "dog"]}), files)
    assert LIMIT in rows[0]["error"] and "not an image" in rows[2]["error"]
    assert rows[1]["label"] in ("cat", "dog") and rows[3]["label"] in ("cat", "dog")


# -- folders -------------------------------------------------------------------------------------------
def add_hostile_entries(folder: Path, names: dict) -> dict:
    """Write the entries named in ``names`` (kind -> name) under ``folder``; returns {name: reason words}."""
    made = {}
    for kind, name in names.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "loop":
            path.symlink_to(path.name)
            made[name] = "Too many levels of symbolic links"
        elif kind == "broken":
            path.symlink_to("nowhere.jpg")
            made[name] = "broken symbolic link"
        elif kind == "fifo":
            os.mkfifo(path)
            made[name] = "not a regular file"
        elif kind == "bomb":
            png_claiming(path, 10000, 10000)
            made[name] = LIMIT
        elif kind == "parent_link":
            path.symlink_to("..", target_is_directory=True)
            made[name] = "a link to a folder above it"
        elif kind == "bad_name":  # "?" stands for the byte 0xff, which is not UTF-8
            save(bar(), path.with_name(os.fsdecode(path.name.encode().replace(b"?", b"\xff"))))
            made[name.replace("?", "\\xff")] = "not valid UTF-8"
    return made


@pytest.fixture
def warned() -> list[str]:
    """The torchclassics logger's warnings during the test, whatever handlers the session attached."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect(logging.WARNING)
    messages.LOGGER.addHandler(handler)
    yield lines
    messages.LOGGER.removeHandler(handler)


def warning_line(warned: list[str]) -> str:
    lines = [line for line in warned if line.startswith("skipped ")]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_kaggle_folder_skips_links_fifos_bad_names_and_bombs_and_names_them(tmp_path, warned):
    shapes.make_folder(tmp_path, 12, "kaggle", size=24, broken=False)
    clean = list_image_folder(tmp_path)
    hostile = add_hostile_entries(tmp_path, {"loop": "cat.90.jpg", "broken": "dog.91.jpg", "fifo": "cat.92.jpg",
                                             "bomb": "dog.93.png", "bad_name": "dog.9?.jpg"})
    with no_hanging():
        folder = ImageFolderData(tmp_path, 24, 0.25, seed=0)
        summary = folder.summary()
    line = warning_line(warned)
    assert f"skipped {len(hostile)} of {len(clean.files) + len(hostile)} files" in line
    for name, why in hostile.items():
        assert f"{name} (" in line and why in line.split(f"{name} (")[1].split(")")[0], (name, line)
    assert folder.listing.classes == clean.classes
    assert summary["n_train"] + summary["n_val"] == len(clean.files)


def test_an_imagefolder_skips_what_it_cannot_read_at_any_depth(tmp_path, warned):
    shapes.make_folder(tmp_path, 12, "imagefolder", size=24, broken=False)
    clean = list_image_folder(tmp_path)
    hostile = add_hostile_entries(tmp_path, {"loop": "horse", "parent_link": "cat/deeper/up",
                                             "broken": "dog/gone.jpg", "fifo": "dog/pipe.jpg"})
    with no_hanging():
        listing = list_image_folder(tmp_path)
    assert (listing.classes, listing.files) == (clean.classes, clean.files)
    assert {name: why for name, why in listing.unusable} == {
        "horse": hostile["horse"], "cat/deeper/up": hostile["cat/deeper/up"],
        "dog/gone.jpg": "broken symbolic link", "dog/pipe.jpg": images.NOT_A_FILE}
    _ = ImageFolderData(tmp_path, 24, 0.25, seed=0).scan  # the scan is the act under test
    assert "skipped 4 of" in warning_line(warned)


def refuse_to_list(monkeypatch, refused: Path):
    """os.scandir as a user without read permission on ``refused`` sees it (tests here run as root)."""
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == refused:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(images.os, "scandir", scandir)


def test_a_sub_folder_that_cannot_be_listed_is_named_and_skipped(tmp_path, monkeypatch):
    shapes.make_folder(tmp_path, 12, "imagefolder", size=24, broken=False)
    (tmp_path / "cat" / "private").mkdir()
    clean = list_image_folder(tmp_path)
    refuse_to_list(monkeypatch, tmp_path / "cat" / "private")
    listing = list_image_folder(tmp_path)
    assert listing.files == clean.files
    assert listing.unusable == (("cat/private", "cannot list: Permission denied"),)


def test_a_class_folder_that_cannot_be_listed_is_one_clear_error(tmp_path, monkeypatch):
    shapes.make_folder(tmp_path, 12, "imagefolder", size=24, broken=False)
    refuse_to_list(monkeypatch, tmp_path / "dog")
    with pytest.raises(UserError, match=r"cannot list the class folder .*dog: Permission denied\. Make it readable"):
        list_image_folder(tmp_path)


@needs_permissions
def test_unreadable_files_and_folders_for_real(tmp_path, warned):
    shapes.make_folder(tmp_path, 12, "imagefolder", size=24, broken=False)
    (tmp_path / "cat" / "private").mkdir()
    save(bar(), tmp_path / "cat" / "private" / "x.png")
    (tmp_path / "cat" / "private").chmod(0)
    (tmp_path / "dog" / "0.jpg").chmod(0)
    try:
        _ = ImageFolderData(tmp_path, 24, 0.25, seed=0).scan  # the scan is the act under test
        line = warning_line(warned)
        assert "cat/private (cannot list: Permission denied)" in line and "dog/0.jpg (" in line
        (tmp_path / "dog").chmod(0)
        with pytest.raises(UserError, match="cannot list the class folder"):
            list_image_folder(tmp_path)
    finally:
        for path in (tmp_path / "cat" / "private", tmp_path / "dog"):
            path.chmod(0o755)


# -- symbolic links: never out of the root, never into one folder twice ---------------------------------
@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the data root, with a photo and a folder of photos the root's links lead to."""
    folder = tmp_path / "outside"
    (folder / "birds").mkdir(parents=True)
    save(bar().convert("RGB"), folder / "photo.jpg")
    for n in range(3):
        save(bar().convert("RGB"), folder / "birds" / f"{n}.jpg")
    return folder


@pytest.fixture
def root(tmp_path) -> Path:
    shapes.make_folder(tmp_path / "data", 12, "imagefolder", size=24, broken=False)
    return tmp_path / "data"


def test_a_link_to_an_ancestor_in_a_class_folder_does_not_list_the_other_classes_again(root):
    """Before: cat/up -> .. listed the dog photos again under cat (18 samples from 12 files)."""
    clean = list_image_folder(root)
    (root / "cat" / "up").symlink_to("..", target_is_directory=True)
    listing = list_image_folder(root)
    assert (listing.files, listing.labels) == (clean.files, clean.labels)
    assert ("cat/up", "a link to a folder above it") in listing.unusable
    folder = ImageFolderData(root, 24, 0.25, seed=0)
    assert len(folder.indices("train")) + len(folder.indices("val")) == 12


def test_links_out_of_the_root_are_left_out_and_named(root, outside, warned):
    clean = list_image_folder(root)
    (root / "cat" / "extra.jpg").symlink_to(outside / "photo.jpg")
    (root / "cat" / "more").symlink_to(outside / "birds", target_is_directory=True)
    (root / "bird").symlink_to(outside / "birds", target_is_directory=True)
    folder = ImageFolderData(root, 24, 0.25, seed=0)
    _ = folder.scan  # the scan is the act under test
    assert (folder.listing.classes, folder.listing.files) == (clean.classes, clean.files)
    line = warning_line(warned)
    assert "skipped 3 of 15" in line
    for name in ("cat/extra.jpg", "cat/more", "bird"):
        assert f"{name} (a link out of data_root)" in line, line


def test_a_kaggle_folders_link_out_of_the_root_is_left_out_and_named(tmp_path, outside):
    shapes.make_folder(tmp_path / "data", 12, "kaggle", size=24, broken=False)
    clean = list_image_folder(tmp_path / "data")
    (tmp_path / "data" / "cat.99.jpg").symlink_to(outside / "photo.jpg")
    listing = list_image_folder(tmp_path / "data")
    assert listing.files == clean.files and listing.unusable == (("cat.99.jpg", "a link out of data_root"),)


def test_a_link_to_a_class_folder_or_a_listed_file_is_not_listed_twice(root):
    """Each file once, labelled where it lies, whatever the names' order: cat/dogs -> ../dog sorts
    before dog/, and still does not take dog's photos (nor does a link to one photo)."""
    clean = list_image_folder(root)
    (root / "cat" / "dogs").symlink_to("../dog", target_is_directory=True)
    (root / "cat" / "a-dog.jpg").symlink_to("../dog/0.jpg")
    (root / "kitten").symlink_to("cat", target_is_directory=True)
    listing = list_image_folder(root)
    assert (listing.classes, listing.files, listing.labels) == (clean.classes, clean.files, clean.labels)
    assert dict(listing.unusable) == {"cat/dogs": "a link to a folder listed already",
                                      "cat/a-dog.jpg": "a link to a file listed already",
                                      "kitten": "a link to a folder listed already"}


def test_a_link_to_a_folder_inside_the_root_listed_nowhere_else_is_listed_once(root):
    """A hidden folder is not listed itself: reached through links, its photos count once, under the
    class of the first link in sorted order; the second link is named."""
    pool = root / ".pool"
    pool.mkdir()
    for n in range(2):
        save(bar().convert("RGB"), pool / f"{n}.jpg")
    (root / "cat" / "pool").symlink_to("../.pool", target_is_directory=True)
    (root / "dog" / "pool").symlink_to("../.pool", target_is_directory=True)
    listing = list_image_folder(root)
    assert [f for f in listing.files if "pool" in f] == ["cat/pool/0.jpg", "cat/pool/1.jpg"]
    assert listing.files.index("cat/pool/0.jpg") < listing.files.index("dog/0.jpg")  # sorted within its class
    assert dict(listing.unusable) == {"dog/pool": "a link to a folder listed already"}


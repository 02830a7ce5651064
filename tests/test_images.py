"""Image folders: both layouts, sorted listings, seeded splits, broken files, reproducible batches."""
import logging
import os
import pickle
import shutil

import pytest
import torch
from PIL import Image

from torchclassics.core import messages
from torchclassics.data import images, shapes
from torchclassics.data.images import (
    ImageBatches,
    ImageFolderData,
    RandomCropFlip,
    SeededSampler,
    list_image_folder,
    load_image,
    split_indices,
)
from torchclassics.errors import UserError


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    """60 JPEGs named cat.N.jpg / dog.N.jpg plus a truncated JPEG, a zero-byte file and a text file."""
    return shapes.make_folder(tmp_path_factory.mktemp("kaggle"), 60, "kaggle", size=40)


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    """ImageFolder layout, PNG, three classes, with the same three broken files."""
    return shapes.make_folder(tmp_path_factory.mktemp("imagefolder"), 36, "imagefolder",
                              classes=("circle", "square", "triangle"), size=40, fmt="png")


def test_kaggle_layout_takes_labels_from_the_file_names(kaggle):
    listing = list_image_folder(kaggle["root"])
    assert listing.layout == "kaggle"
    assert listing.classes == ("cat", "dog")
    assert list(listing.files) == sorted(listing.files)
    assert len(listing.files) == 63  # the broken files are named like images: the scan finds them
    for name, label in zip(listing.files, listing.labels):
        assert name.startswith(listing.classes[label] + ".")


def test_imagefolder_layout_takes_any_number_of_classes(three_classes):
    listing = list_image_folder(three_classes["root"])
    assert listing.layout == "imagefolder"
    assert listing.classes == ("circle", "square", "triangle")
    assert [listing.labels.count(k) for k in range(3)] == [13, 13, 13]  # 12 images + 1 broken file each
    for name, label in zip(listing.files, listing.labels):
        assert name.startswith(listing.classes[label] + "/")


def test_listing_does_not_depend_on_the_file_system_order(kaggle, monkeypatch):
    """The seed's bug: os.listdir order differs between machines, and so did its results."""
    expected = list_image_folder(kaggle["root"])
    real_scandir = os.scandir

    class Reversed:
        def __init__(self, path):
            self.entries = real_scandir(path)

        def __enter__(self):
            return reversed(list(self.entries))

        def __exit__(self, *exc):
            self.entries.close()

    monkeypatch.setattr(images.os, "scandir", Reversed)
    assert list_image_folder(kaggle["root"]) == expected


@pytest.mark.parametrize("layout, needle", [
    ("unlabelled", "carry no class"),
    ("empty", "holds no images"),
    ("missing", "no such folder"),
])
def test_folders_of_no_accepted_layout_name_the_layouts(tmp_path, layout, needle):
    root = tmp_path / "data"
    if layout != "missing":
        root.mkdir()
    if layout == "unlabelled":  # Kaggle's test1/ folder: 1.jpg, 2.jpg, ...
        for n in (1, 2):
            Image.new("RGB", (8, 8)).save(root / f"{n}.jpg")
    with pytest.raises(UserError) as err:
        list_image_folder(root)
    assert needle in str(err.value)
    assert "Accepted layouts" in str(err.value) and "<class>.<n>.<ext>" in str(err.value)


def test_an_empty_class_folder_is_an_error(tmp_path):
    shapes.make_folder(tmp_path, 4, "imagefolder", broken=False)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(UserError, match="empty_class"):
        list_image_folder(tmp_path)


def test_a_single_class_is_an_error(tmp_path):
    made = shapes.make_folder(tmp_path, 4, "imagefolder", broken=False)
    shutil.rmtree(tmp_path / "dog")
    with pytest.raises(UserError, match="only the class 'cat'"):
        list_image_folder(made["root"])


def test_the_folder_above_kaggles_train_folder_gets_a_hint(tmp_path):
    shapes.make_folder(tmp_path / "train", 4, "kaggle", broken=False)
    (tmp_path / "test1").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "test1" / "1.jpg")
    with pytest.raises(UserError, match=r"Set data_root=.*train"):
        list_image_folder(tmp_path)


def test_split_is_seeded_stratified_and_covers_every_file():
    labels = [0] * 30 + [1] * 10
    train, val = split_indices(labels, 0.25, seed=3)
    assert (train, val) == split_indices(labels, 0.25, seed=3)
    assert val != split_indices(labels, 0.25, seed=4)[1]
    assert sorted(train + val) == list(range(40)) and not set(train) & set(val)
    assert sum(labels[i] == 0 for i in val) == 8 and sum(labels[i] == 1 for i in val) == 2  # per class
    assert val == sorted(val) and train == sorted(train)


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


def test_broken_files_are_skipped_with_one_warning(kaggle, warned):
    folder = ImageFolderData(kaggle["root"], 32, 0.2, seed=0)
    summary = folder.summary()
    lines = warned
    assert len(lines) == 1 and "skipped 3 of 63" in lines[0]
    for path in kaggle["broken"]:
        assert path.name in lines[0]
    assert summary["skipped_files"] == 3
    assert {e.split()[0] for e in summary["skipped_examples"]} == {p.name for p in kaggle["broken"]}
    assert summary["n_train"] + summary["n_val"] == 60


def test_every_class_needs_a_readable_training_image(tmp_path, capsys):
    shapes.make_folder(tmp_path, 6, "imagefolder", broken=False)
    for path in (tmp_path / "dog").iterdir():
        path.write_bytes(b"")
    with pytest.raises(UserError, match="no readable training image of class 'dog'"):
        _ = ImageFolderData(tmp_path, 32, 0.2, seed=0).scan  # the scan is the act under test


def test_load_image_resizes_the_shorter_side_and_crops_the_centre(tmp_path):
    Image.new("RGB", (90, 40), (200, 10, 10)).save(tmp_path / "wide.png")
    pixels = load_image(tmp_path / "wide.png", 24)
    assert pixels.shape == (3, 24, 24) and pixels.dtype == torch.uint8
    assert pixels[0].float().mean() == pytest.approx(200, abs=1)


def test_cached_and_disk_batches_are_the_same_and_seeded_by_epoch(kaggle, capsys):
    def batches(cache):
        folder = ImageFolderData(kaggle["root"], 32, 0.2, seed=0, cache=cache)
        return ImageBatches(folder, "train", 16, "cpu", shuffle=True, seed=5, augment=RandomCropFlip(32))

    cached, disk = batches(True), batches(False)
    assert cached.folder.summary()["images_cached"] and not disk.folder.summary()["images_cached"]
    assert cached.n_samples == cached.folder.summary()["n_train"] and len(cached) == -(-cached.n_samples // 16)
    first = list(cached.epoch(1))
    for (x1, y1), (x2, y2) in zip(first, disk.epoch(1)):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    again = list(cached.epoch(1))  # a resumed run draws exactly these batches
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))
    other = list(cached.epoch(2))
    assert not torch.equal(first[0][1], other[0][1])
    assert first[0][0].dtype == torch.float32 and -3 < float(first[0][0].mean()) < 3


def test_augmentation_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    RandomCropFlip(16)(torch.zeros(3, 16, 16, dtype=torch.uint8), seed=1)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.integration
def test_worker_processes_give_the_same_batches(kaggle):
    """Spawned workers (and so any worker count) draw the augmentation the main process would."""
    folder = ImageFolderData(kaggle["root"], 32, 0.2, seed=0, cache=False)
    in_process = ImageBatches(folder, "train", 16, "cpu", shuffle=True, augment=RandomCropFlip(32))
    workers = ImageBatches(folder, "train", 16, "cpu", shuffle=True, augment=RandomCropFlip(32), num_workers=1)
    assert workers.loader.multiprocessing_context.get_start_method() == "spawn"
    for (x1, y1), (x2, y2) in zip(in_process.epoch(3), workers.epoch(3)):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    pickle.loads(pickle.dumps(workers.dataset))  # what spawn needs


def test_a_file_that_vanishes_after_the_scan_does_not_stop_the_epoch(tmp_path):
    shapes.make_folder(tmp_path, 20, "kaggle", broken=False)
    folder = ImageFolderData(tmp_path, 32, 0.2, seed=0, cache=False)
    batches = ImageBatches(folder, "train", 4, "cpu")
    expected = batches.n_samples
    (tmp_path / folder.listing.files[folder.indices("train")[0]]).unlink()
    assert sum(len(y) for _, y in batches.epoch(1)) == expected - 1


def test_shards_split_one_permutation_and_keep_per_sample_seeds():
    whole = list(SeededSampler(10, seed=1, shuffle=True))
    parts = []
    for rank in range(2):
        sampler = SeededSampler(10, seed=1, shuffle=True)
        sampler.rank, sampler.world = rank, 2
        parts.append(list(sampler))
        assert len(sampler) == 5
    assert parts[0] == whole[0::2] and parts[1] == whole[1::2]


def test_shapes_command_writes_both_layouts(tmp_path, capsys):
    assert shapes.main([str(tmp_path / "k"), "--n", "4"]) == 0
    assert shapes.main([str(tmp_path / "f"), "--n", "6", "--layout", "imagefolder", "--classes", "a,b,c"]) == 0
    assert "wrote 4 images" in capsys.readouterr().out
    assert list_image_folder(tmp_path / "k").classes == ("cat", "dog")
    assert list_image_folder(tmp_path / "f").classes == ("a", "b", "c")
    assert (tmp_path / "k" / "dog.3.jpg").stat().st_size == 0  # the zero-byte file


def test_a_gif_photo_is_listed_and_read_first_frame(tmp_path):
    """Before: a .gif was silently left out, neither counted nor named in the warning."""
    shapes.make_folder(tmp_path, 8, "imagefolder", size=24, broken=False)
    first, second = Image.new("RGB", (24, 24), (250, 0, 0)), Image.new("RGB", (24, 24), (0, 0, 250))
    first.save(tmp_path / "cat" / "animated.gif", save_all=True, append_images=[second])
    folder = ImageFolderData(tmp_path, 24, 0.25, seed=0)
    assert "cat/animated.gif" in folder.listing.files
    row = folder.listing.files.index("cat/animated.gif")
    assert folder.scan.readable[row] and folder.scan.pixels[row][0].float().mean() > 200  # red: the first frame
    assert shapes.main([str(tmp_path / "k"), "--n", "4", "--no-broken"]) == 0
    Image.new("RGB", (8, 8)).save(tmp_path / "k" / "dog.9.gif")
    assert "dog.9.gif" in list_image_folder(tmp_path / "k").files


def test_photos_in_formats_not_read_are_named_in_the_warning(tmp_path):
    shapes.make_folder(tmp_path, 8, "imagefolder", size=24, broken=False)
    (tmp_path / "dog" / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (tmp_path / "dog" / "notes.txt").write_text("not a photo: not named")
    listing = list_image_folder(tmp_path)
    assert listing.unusable == (("dog/IMG_0001.HEIC", "HEIC photos are not read; convert it to JPEG or PNG"),)


def test_check_readable_refuses_a_class_without_one_decodable_image(tmp_path, monkeypatch):
    """Cheap enough to run before a run folder is claimed: in a healthy folder it decodes one training
    image per class and one validation image; the full scan comes later."""
    shapes.make_folder(tmp_path, 40, "imagefolder", size=24, broken=False)
    decoded = []
    real = images.load_image
    monkeypatch.setattr(images, "load_image", lambda path, size: decoded.append(path) or real(path, size))
    ImageFolderData(tmp_path, 24, 0.25, seed=0).check_readable()
    assert len(decoded) == 3
    for path in (tmp_path / "dog").iterdir():
        path.write_bytes(b"")
    with pytest.raises(UserError, match="no readable training image of class 'dog'"):
        ImageFolderData(tmp_path, 24, 0.25, seed=0).check_readable()


def test_check_readable_needs_a_readable_validation_image(tmp_path):
    shapes.make_folder(tmp_path, 8, "imagefolder", size=24, broken=False)
    folder = ImageFolderData(tmp_path, 24, 0.25, seed=0)
    for row in folder.parts["val"]:
        (tmp_path / folder.listing.files[row]).write_bytes(b"")
    with pytest.raises(UserError, match="no readable image left for validation"):
        ImageFolderData(tmp_path, 24, 0.25, seed=0).check_readable()

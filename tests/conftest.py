"""Every test runs with its own runs root, so nothing lands in the checkout."""
import pytest


@pytest.fixture(autouse=True)
def isolated_runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHCLASSICS_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path / "runs"

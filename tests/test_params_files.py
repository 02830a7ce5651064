"""Params files are read defensively: a regular file of at most 1 MB, nesting limited, no key named
twice; a FIFO or device is refused at once (never read, never waited on); a user's
experiments/NAME/params.json that is there but cannot be read is an error, never skipped for the
packaged defaults."""
import json
import os
import sys
import threading

import pytest

from torchclassics.errors import UserError
from torchclassics.params import sources
from torchclassics.params.sources import PARAMS_MAX_BYTES, resolve


def within(seconds, call):
    """``call()``'s result or exception, failing the test if it takes longer than ``seconds`` (a read
    of a FIFO would block for ever: run it in a thread that may be left behind)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def project_params(folder):
    path = folder / "experiments" / "regression" / "params.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_at_once_as_params_file_and_as_a_projects_params_json(tmp_path, monkeypatch):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="fifo.json is not a regular file"):
        within(10, lambda: resolve("regression", params_file=fifo))
    monkeypatch.chdir(tmp_path)
    os.mkfifo(project_params(tmp_path))
    with pytest.raises(UserError, match="params.json is not a regular file"):
        within(10, lambda: resolve("regression"))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_device_is_refused():
    with pytest.raises(UserError, match="/dev/zero is not a regular file"):
        within(10, lambda: resolve("regression", params_file="/dev/zero"))


def test_a_key_named_twice_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "twice.json"
    path.write_text('{"lr": 0.1, "hidden": 4, "lr": 0.3}')
    with pytest.raises(UserError, match=r"twice.json names the key 'lr' twice in one object"):
        resolve("regression", params_file=path)
    with pytest.raises(UserError, match=r"--set scheduler=.*names the key 'name' twice"):
        resolve("regression", sets=['scheduler={"name": "StepLR", "name": "ExponentialLR"}'])


def test_a_file_over_one_megabyte_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"lr": 0.1, "notes": "x" * PARAMS_MAX_BYTES}))
    with pytest.raises(UserError, match=r"big.json is 1,000,\d{3} bytes; a file here may hold at most 1,000,000"):
        resolve("regression", params_file=path)


@pytest.mark.parametrize("depth", [100, 100_000])  # beyond the limit; beyond Python's recursion limit
def test_deep_nesting_is_one_line(tmp_path, depth):
    path = tmp_path / "deep.json"
    path.write_text('{"a": ' * depth + "1" + "}" * depth)
    with pytest.raises(UserError, match="nests deeper than 64 levels"):
        resolve("regression", params_file=path)
    with pytest.raises(UserError, match="nests deeper than"):
        resolve("regression", sets=["optimizer_args=" + '{"a": ' * depth + "1" + "}" * depth])


def test_a_projects_params_json_that_is_a_folder_is_an_error_not_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    project_params(tmp_path).mkdir()
    with pytest.raises(UserError, match=r"experiments/regression/params.json is a folder, not a file"):
        resolve("regression")


def test_a_projects_params_json_in_a_symlink_loop_is_an_error(tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    path = project_params(folder.parent / "mine" / "..")  # mine/../experiments/regression
    monkeypatch.setenv("TORCHCLASSICS_EXPERIMENTS", str(tmp_path / "experiments"))
    (path.parent / "other.json").symlink_to(path)
    path.symlink_to(path.parent / "other.json")
    with pytest.raises(UserError, match=r"cannot read .*params.json: Too many levels of symbolic links"):
        resolve("regression")


def test_a_projects_broken_link_is_an_error_and_the_next_folder_is_not_used(tmp_path, monkeypatch):
    # $TORCHCLASSICS_EXPERIMENTS comes first: its file, even broken, is the user's choice
    monkeypatch.chdir(tmp_path)
    project_params(tmp_path).write_text(json.dumps({"hidden": 7}))
    mine = project_params(tmp_path / "mine")
    mine.symlink_to(tmp_path / "nowhere.json")
    monkeypatch.setenv("TORCHCLASSICS_EXPERIMENTS", str(tmp_path / "mine" / "experiments"))
    with pytest.raises(UserError, match=r"cannot read .*mine/experiments/regression/params.json: No such file"):
        resolve("regression")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_projects_params_json_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = project_params(tmp_path)
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(UserError, match="Permission denied"):
        resolve("regression")


def test_the_packaged_files_are_read_the_same_way(monkeypatch):
    seen = []
    monkeypatch.setattr(sources.jsonfile, "read_object", lambda path, limit: seen.append(limit) or {})
    assert sources.read_params("anything.json") == {} and seen == [PARAMS_MAX_BYTES]

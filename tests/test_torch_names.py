"""Optimizer and scheduler names come from torch's public namespaces, computed once per torch
install and cached, so that answers about parameters never import torch in their process."""
import json
import os
import subprocess
import sys

import pytest
import torch

from torchclassics.errors import UserError
from torchclassics.params import torch_names
from torchclassics.params.sources import resolve


def test_names_are_the_classes_of_torchs_namespaces_less_those_params_json_cannot_hold():
    names = torch_names.from_namespaces(torch)
    optimizers, schedulers = set(names["optimizers"]), set(names["schedulers"])
    expected = {name for name in dir(torch.optim) if isinstance(getattr(torch.optim, name), type)
                and issubclass(getattr(torch.optim, name), torch.optim.Optimizer)} - {"Optimizer"}
    assert optimizers == expected and {"SGD", "Adam", "AdamW", "LBFGS", "SparseAdam"} <= optimizers
    assert {"StepLR", "CosineAnnealingLR", "OneCycleLR", "CyclicLR", "ReduceLROnPlateau"} <= schedulers
    # functions and other schedulers cannot be written in params.json; the bases are not schedulers to use
    assert not {"LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler", "LRScheduler",
                "_LRScheduler"} & schedulers
    assert torch_names.optimizer_names() == sorted(optimizers)  # this process has torch: read directly


@pytest.mark.parametrize("given, meant", [("Adamw", "AdamW"), ("adamw", "AdamW"), ("sgd", "SGD"),
                                          ("Adamm", "Adam"), ("rmsprop", "RMSprop")])
def test_a_name_in_another_case_is_refused_with_the_right_spelling(given, meant):
    with pytest.raises(UserError, match=rf"optimizer=\"{given}\": not a torch.optim optimizer; did you mean '{meant}'"):
        resolve("regression", sets=[f"optimizer={given}"])


def test_a_scheduler_name_in_another_case_too():
    with pytest.raises(UserError, match=r"not a torch.optim.lr_scheduler class; did you mean 'StepLR'\?"):
        resolve("regression", sets=["scheduler.name=steplr", "scheduler.step_size=2"])
    with pytest.raises(UserError, match=r"did you mean 'ReduceLROnPlateau'\?"):
        resolve("regression", sets=["scheduler.name=reducelronplateau"])


WITHOUT_TORCH = """
import json, sys
from torchclassics.params import torch_names
{before}
print(json.dumps(torch_names.torch_names()))
assert "torch" not in sys.modules, "torch was imported"
"""


def names_in_a_process(cache, before=""):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TORCH.format(before=before)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.integration
def test_names_are_computed_once_in_a_child_then_read_from_the_cache(tmp_path):
    expected = torch_names.from_namespaces(torch)
    assert names_in_a_process(tmp_path) == expected  # a child imported torch; this process did not
    cached = list((tmp_path / "torchclassics" / "torch-names").glob("*.json"))
    assert len(cached) == 1
    stored = json.loads(cached[0].read_text())
    assert os.path.samefile(stored["torch"]["file"], torch.__file__)  # keyed by where torch is, and its version
    assert stored["torch"]["version"] in (torch.__version__, torch.__version__.split("+")[0])
    no_child = "import subprocess\nsubprocess.run = None  # a child now would fail: the cache must answer"
    assert names_in_a_process(tmp_path, before=no_child) == expected
    cached[0].write_text("{ damaged")
    assert names_in_a_process(tmp_path) == expected  # computed again, and the file repaired
    assert json.loads(cached[0].read_text())["optimizers"] == expected["optimizers"]


FAKE_TORCH = """
import json, sys
sys.path.insert(0, {fake!r})
from torchclassics.core import messages
from torchclassics.params.sources import resolve
messages.console()
print(json.dumps(resolve("regression", sets=["optimizer=Whatever"])["optimizer"]))
"""


@pytest.mark.integration
def test_when_torch_cannot_be_imported_names_are_not_checked_and_a_note_says_so(tmp_path):
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('a broken torch')\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", FAKE_TORCH.format(fake=str(fake))], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == "Whatever"  # torch's own build of the optimizer will judge it
    assert "cannot be imported: optimizer and scheduler names are not checked until torch builds them" in proc.stderr
    assert not (tmp_path / "cache" / "torchclassics" / "torch-names").exists()  # a failure is not cached


NO_TORCH = """
import sys
from torchclassics.cli import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules, "torch was imported"
print("exit", code)
"""


@pytest.mark.integration
@pytest.mark.parametrize("args, code", [
    (["list"], 0), (["params", "regression"], 0),
    (["params", "regression", "--set", "optimizer=Adamw"], 2),
    (["params", "regression", "--set", "scheduler.name=steplr"], 2),
    (["params", "dqn_cartpole", "--set", "learn_start=5000"], 2),
    (["params", "regression", "--set", "hidden=1e20"], 2),
    (["run", "regression", "--params", "/dev/null/nothing.json"], 2),
])
def test_answers_with_a_cold_cache_import_no_torch(args, code, tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cold")}
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=600)
    assert "torch was imported" not in proc.stderr, proc.stderr
    assert f"exit {code}" in proc.stdout, proc.stderr

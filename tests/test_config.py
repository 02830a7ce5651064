"""Parameters: every source (packaged defaults, the user's params.json, --params, --set, keyword
arguments) is checked by one set of rules per experiment; mistakes give one line and exit 2."""
import json
import subprocess
import sys

import pytest

from torchclassics.cli import main
from torchclassics.errors import UserError
from torchclassics.params import packaged, sources


@pytest.mark.parametrize("name", packaged.experiment_names())
def test_every_packaged_default_has_a_rule_and_passes_it(name):
    rules = sources.schema(name)["properties"]
    assert set(rules) == set(sources.packaged_defaults(name))
    assert sources.resolve(name) == {k: v for k, v in sources.Layers(name).normalised().items()}
    assert sources.description(name)


def test_defaults_come_from_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./experiments here: the package's own file is the source
    on_disk = json.loads(packaged.packaged_file("regression").read_text())
    assert sources.resolve("regression") == on_disk


def test_set_values_are_read_as_the_rules_type():
    params = sources.resolve("regression", sets=["lr=0.5", "epochs=3", "batch_size=null", "optimizer=Adam"])
    assert params["lr"] == 0.5 and params["epochs"] == 3 and isinstance(params["epochs"], int)
    assert params["batch_size"] is None and params["optimizer"] == "Adam"
    assert sources.resolve("regression", sets=["epochs=2.0"])["epochs"] == 2  # an integral float is an int


def test_lists_accept_commas_and_json_and_dotted_keys_reach_objects():
    a = sources.resolve("optimizers", sets=["optimizers=Adam,SGD"])["optimizers"]
    b = sources.resolve("optimizers", sets=['optimizers=["Adam", "SGD"]'])["optimizers"]
    assert a == b == ["Adam", "SGD"]
    params = sources.resolve("optimizers", sets=["optimizer_args.Adam.weight_decay=0.01"])
    assert params["optimizer_args"]["Adam"] == {"betas": [0.9, 0.99], "weight_decay": 0.01}
    params = sources.resolve("regression", sets=["scheduler.name=StepLR", "scheduler.step_size=2"])
    assert params["scheduler"] == {"name": "StepLR", "step_size": 2}


@pytest.mark.parametrize("sets, message", [
    (["lrr=0.1"], r"--set lrr=0.1: unknown parameter 'lrr' of regression\. Did you mean 'lr'\?"),
    (["lr=fast"], r'--set lr="fast": expected a number \(default 0.2\)'),
    (["lr=0"], r"--set lr=0: must be > 0"),
    (["lr=NaN"], r"--set lr=NaN: not a finite number"),
    (["noise=Infinity"], r"noise=Infinity: not a finite number"),
    (["batch_size=0"], r"batch_size=0: must be >= 1"),
    (["epochs=2.5"], r"epochs=2.5: expected an integer"),
    (["epochs=true"], r"epochs=true: expected an integer"),
    (["seed=true"], r"seed=true: expected an integer"),
    (["hidden=null"], r"hidden=null: expected an integer"),
    (["clip_grad_norm=-1"], r"clip_grad_norm=-1: must be > 0 \(or null\)"),
    (["optimizer=Adamm"], r"not a torch.optim optimizer; did you mean 'Adam'\?"),
    (["scheduler.name=Nope"], r"not a torch.optim.lr_scheduler class"),
    (["scheduler.name=LambdaLR"], r"not a torch.optim.lr_scheduler class"),  # needs a Python function
    (['scheduler={"step_size": 1}'], r"needs 'name'"),
    (["optimizer_args=3"], r"optimizer_args=3: expected an object"),
    (["lr"], r"--set 'lr': expected key=value"),
])
def test_bad_values_name_the_source_key_value_and_what_is_allowed(sets, message):
    with pytest.raises(UserError, match=message):
        sources.resolve("regression", sets=sets)


@pytest.mark.parametrize("name, sets, message", [
    ("optimizers", ["optimizers=SGD,Adamx"], r"optimizers\[1\]=\"Adamx\": not a torch.optim optimizer"),
    ("optimizers", ["optimizers=SGD,SGD"], r"names an item twice"),
    ("optimizers", ["optimizers="], r"needs at least 1 item"),
    ("dogs_vs_cats", ["model=vgg"], r'choose one of "small_cnn", "resnet18"'),
    ("dogs_vs_cats", ["crop_scale=0.5,2"], r"crop_scale\[1\]=2: must be <= 1"),
    ("dogs_vs_cats", ["val_fraction=1"], r"val_fraction=1: must be < 1"),
    ("cnn_mnist", ["tsne_iter=10"], r"tsne_iter=10: must be >= 250"),
])
def test_each_experiment_declares_its_own_rules(name, sets, message):
    with pytest.raises(UserError, match=message):
        sources.resolve(name, sets=sets)


def test_momentum_alias_only_in_an_optimizers_list():
    assert sources.resolve("optimizers", sets=["optimizers=Momentum"])["optimizers"] == ["Momentum"]
    with pytest.raises(UserError, match="not a torch.optim optimizer"):
        sources.resolve("regression", sets=["optimizer=Momentum"])


def test_keyword_arguments_follow_the_same_rules():
    assert sources.resolve("regression", overrides={"lr": 0.3})["lr"] == 0.3
    with pytest.raises(UserError, match=r"keyword argument lr=-2: must be > 0"):
        sources.resolve("regression", overrides={"lr": -2})
    with pytest.raises(UserError, match=r"seed=true: expected an integer"):
        sources.resolve("regression", overrides={"seed": True})


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_a_projects_params_json_takes_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "experiments" / "regression" / "params.json",
          {**sources.packaged_defaults("regression"), "lr": 0.05})
    assert sources.resolve("regression")["lr"] == 0.05
    assert sources.resolve("regression", sets=["lr=0.1"])["lr"] == 0.1  # --set still wins


def test_a_projects_params_json_missing_keys_takes_the_defaults_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "experiments" / "regression" / "params.json", {"lr": 0.05})
    params = sources.resolve("regression")
    assert params["lr"] == 0.05 and params["hidden"] == sources.packaged_defaults("regression")["hidden"]
    assert "does not set" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ({"lrr": 0.1}, r"experiments/regression/params.json: unknown parameter 'lrr'"),
    ({"lr": "0.1"}, r'params.json: lr="0.1": expected a number'),
    ({"lr": None}, r"params.json: lr=null: expected a number"),
    ({"seed": True}, r"params.json: seed=true: expected an integer"),
    ({"epochs": 10.5}, r"params.json: epochs=10.5: expected an integer"),
    ({"experiment": "classification"}, r"holds parameters of the 'classification' experiment, not 'regression'"),
])
def test_a_projects_params_json_is_checked_as_strictly_as_set(tmp_path, monkeypatch, content, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "experiments" / "regression" / "params.json", content)
    with pytest.raises(UserError, match=message):
        sources.resolve("regression")


def test_experiments_folder_from_the_environment(tmp_path, monkeypatch):
    write(tmp_path / "mine" / "regression" / "params.json", {"hidden": 7})
    monkeypatch.setenv("TORCHCLASSICS_EXPERIMENTS", str(tmp_path / "mine"))
    assert sources.resolve("regression")["hidden"] == 7


def test_params_file_run_params_and_best_params(tmp_path):
    run_params = write(tmp_path / "run.json", {"experiment": "regression", **sources.packaged_defaults("regression"),
                                                "hidden": 12})
    assert sources.resolve("regression", params_file=run_params)["hidden"] == 12
    best = write(tmp_path / "best_params.json", {"experiment": "regression", "study": "s", "best_value": 0.1,
                                                  "best_params": {"lr": 0.3, "hidden": 20}})
    params = sources.resolve("regression", params_file=best, sets=["hidden=21"])
    assert params["lr"] == 0.3 and params["hidden"] == 21  # --set on top
    with pytest.raises(UserError, match="'regression' experiment, not 'classification'"):
        sources.resolve("classification", params_file=run_params)
    bad = write(tmp_path / "bad.json", {"lr": -1})
    with pytest.raises(UserError, match=r"--params .*bad.json: lr=-1: must be > 0"):
        sources.resolve("regression", params_file=bad)


def test_init_copies_the_files_and_never_overwrites(tmp_path, capsys):
    assert main(["init", "regression", str(tmp_path)]) == 0
    folder = tmp_path / "experiments" / "regression"
    assert json.loads((folder / "params.json").read_text()) == sources.packaged_defaults("regression")
    assert (folder / "search.json").is_file()
    (folder / "params.json").write_text('{"lr": 0.01}')
    assert main(["init", "regression", str(tmp_path)]) == 2
    assert (folder / "params.json").read_text() == '{"lr": 0.01}'
    assert "exists already" in capsys.readouterr().err


def test_params_prints_the_resolved_parameters(capsys):
    assert main(["params", "regression", "--set", "lr=0.3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {**sources.packaged_defaults("regression"), "lr": 0.3}


def test_relative_data_root_is_saved_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sources.resolve("cnn_mnist", sets=["data_root=mnist"])["data_root"] == str(tmp_path / "mnist")


NO_TORCH = """
import sys
from torchclassics.cli import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules, "torch was imported"
print("exit", code)
"""


@pytest.mark.parametrize("args", [
    ["list"], ["params", "regression"], ["run", "nosuch"], ["run", "regression", "--set", "lrr=1"],
    ["run", "regression", "--set", "lr=abc"], ["run", "regression", "--set", "optimizer=Adamm"],
    ["lesson", "--list"], ["--version"],
])
def test_instant_answers_never_import_torch(args, tmp_path):
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, cwd=tmp_path)
    assert "torch was imported" not in proc.stderr, proc.stderr
    assert proc.returncode == 0 or args == ["--version"], proc.stderr
    assert ("exit 0" in proc.stdout) or ("exit 2" in proc.stdout) or args == ["--version"]


@pytest.mark.parametrize("args, expected", [
    (["run", "regression", "--set", "lrr=0.1"], "unknown parameter 'lrr'"),
    (["run", "regression", "--set", "lr=-1"], "lr=-1: must be > 0"),
    (["run", "regression", "--set", "optimizer=Nope"], 'optimizer="Nope"'),
    (["run", "regression", "--device", "tpu"], "--device tpu: unknown device"),
    (["run", "regresion"], "unknown experiment 'regresion'. Did you mean 'regression'?"),
    (["run", "regression", "--set", "lr"], "expected key=value"),
    (["run", "regression", "--params", "/nonexistent.json"], "cannot read /nonexistent.json"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, expected, capsys, tmp_path):
    out = tmp_path / "run"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err
    assert not out.exists(), "a failed command must write nothing"


def test_cli_bad_input_has_no_traceback_in_a_real_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "torchclassics", "run", "regression", "--set", "lr=0"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["torchclassics: error: --set lr=0: must be > 0 (default 0.2)."]


@pytest.mark.parametrize("sets, expected", [
    (["optimizer_args.momentum=abc"], "optimizer='SGD' with optimizer_args={'momentum': 'abc'}"),
    (["optimizer=SparseAdam"], "cannot train: SparseAdam does not support dense"),  # only a step tells
    (['scheduler={"name": "StepLR"}'], "missing 1 required positional argument: 'step_size'"),
    (['scheduler={"name": "StepLR", "step_size": 0}'], "fails at epoch 1 of 200"),
    (['scheduler={"name": "CosineAnnealingLR", "T_max": 0}'], "fails at epoch 1 of 200"),
])
def test_arguments_only_torch_can_judge_fail_before_anything_is_written(tmp_path, capsys, sets, expected):
    out = tmp_path / "run"
    assert main(["run", "regression", "--out", str(out), *[a for s in sets for a in ("--set", s)]]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.strip().count("\n") == 0
    assert not out.exists()


def test_paths_that_are_files_give_one_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["run", "regression", "--out", str(a_file / "run"), "--set", "epochs=1", "--no-figures"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0

"""Parameters: overrides are type-checked against params.json; mistakes give one line and exit 2."""
import json
import subprocess
import sys

import pytest

from torchclassics import config
from torchclassics.cli import main
from torchclassics.errors import UserError


def test_defaults_come_from_params_json():
    params = config.resolve("regression")
    on_disk = json.loads(config.params_path("regression").read_text())
    assert params == on_disk


def test_overrides_are_parsed_to_the_default_type():
    params = config.resolve("regression", {"lr": "0.5", "epochs": "3", "batch_size": 10})
    assert params["lr"] == 0.5 and isinstance(params["lr"], float)
    assert params["epochs"] == 3 and isinstance(params["epochs"], int)


def test_int_default_given_as_float_string_is_accepted_for_float_keys_only():
    assert config.resolve("regression", {"lr": "1"})["lr"] == 1.0
    with pytest.raises(UserError, match=r"epochs=2.5: expected int"):
        config.resolve("regression", {"epochs": "2.5"})


def test_list_override_accepts_commas_and_json():
    a = config.resolve("optimizers", {"optimizers": "Adam,SGD"})["optimizers"]
    b = config.resolve("optimizers", {"optimizers": '["Adam", "SGD"]'})["optimizers"]
    assert a == b == ["Adam", "SGD"]


def test_dotted_key_reaches_into_an_object():
    params = config.resolve("optimizers", {"optimizer_args.Momentum": '{"momentum": 0.5}'})
    assert params["optimizer_args"]["Momentum"] == {"momentum": 0.5}
    assert params["optimizer_args"]["Adam"] == {"betas": [0.9, 0.99]}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lrr": "0.1"}, r"unknown parameter 'lrr'\. Did you mean 'lr'\?"),
        ({"lr": "fast"}, r'lr="fast": expected float'),
        ({"lr": "0"}, r"lr=0.0: must be > 0"),
        ({"lr": "-1"}, r"lr=-1.0: must be > 0"),
        ({"batch_size": "0"}, r"batch_size=0: must be > 0"),
        ({"optimizer": "Adamm"}, r"optimizer='Adamm': not a torch.optim optimizer. Did you mean 'Adam'\?"),
        ({"epochs": "true"}, r"epochs=true: expected int"),
    ],
)
def test_bad_overrides_name_key_value_and_what_is_allowed(overrides, message):
    with pytest.raises(UserError, match=message):
        config.resolve("regression", overrides)


def test_unknown_optimizer_in_a_list():
    with pytest.raises(UserError, match="'Adamx'"):
        config.resolve("optimizers", {"optimizers": "SGD,Adamx"})


def test_momentum_alias_is_allowed():
    assert config.resolve("optimizers", {"optimizers": "Momentum"})["optimizers"] == ["Momentum"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "regression", "--set", "lrr=0.1"], "unknown parameter 'lrr'"),
        (["run", "regression", "--set", "lr=-1"], "lr=-1.0: must be > 0"),
        (["run", "regression", "--set", "batch_size=0"], "batch_size=0: must be > 0"),
        (["run", "regression", "--set", "optimizer=Nope"], "optimizer='Nope'"),
        (["run", "regression", "--device", "tpu"], "--device tpu: unknown device"),
        (["run", "regresion"], "unknown experiment 'regresion'. Did you mean 'regression'?"),
        (["run", "regression", "--set", "lr"], "expected key=value"),
    ],
)
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
    assert proc.stderr.strip().splitlines() == ["torchclassics: error: lr=0.0: must be > 0."]


def test_existing_run_is_never_damaged_by_a_failed_command(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "regression", "--out", str(out), "--set", "epochs=3", "--no-figures"]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # A new run into the same folder, a bad override on resume, a bad value: all refused.
    assert main(["run", "regression", "--out", str(out), "--set", "epochs=3"]) == 2
    assert main(["run", "regression", "--out", str(out), "--resume", "--set", "lr=0.5"]) == 2
    assert main(["run", "classification", "--out", str(out), "--resume"]) == 2
    assert main(["run", "regression", "--out", str(out), "--resume", "--set", "epochs=-1"]) == 2
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    errors = capsys.readouterr().err
    assert "already holds files" in errors and "drop --set lr" in errors


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"scheduler": "5"}, r"scheduler=5: expected object or null"),
        ({"clip_grad_norm": "abc"}, r'clip_grad_norm="abc": expected int or float or null'),
        ({"epochs": "null"}, r"epochs=null: expected int"),
        ({"n_points": "0"}, r"n_points=0: must be > 0"),
    ],
)
def test_nullable_and_size_keys_are_checked(overrides, message):
    with pytest.raises(UserError, match=message):
        config.resolve("regression", overrides)


def test_empty_optimizer_list_is_refused():
    with pytest.raises(UserError, match="optimizers=\\[\\]"):
        config.resolve("optimizers", {"optimizers": ""})


def test_dotted_keys_reach_any_depth():
    params = config.resolve("optimizers", {"optimizer_args.Adam.weight_decay": "0.01"})
    assert params["optimizer_args"]["Adam"] == {"betas": [0.9, 0.99], "weight_decay": 0.01}


def test_relative_data_root_is_saved_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config.resolve("cnn_mnist", {"data_root": "mnist"})["data_root"] == str(tmp_path / "mnist")


@pytest.mark.parametrize("sets, expected", [
    (["optimizer_args.momentum=abc"], "optimizer SGD"),
    (['scheduler={"name": "StepLR"}'], "scheduler StepLR"),
])
def test_arguments_only_torch_can_judge_fail_before_anything_is_written(tmp_path, capsys, sets, expected):
    out = tmp_path / "run"
    assert main(["run", "regression", "--out", str(out), *[a for s in sets for a in ("--set", s)]]) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_paths_that_are_files_give_one_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["run", "regression", "--out", str(a_file / "run"), "--set", "epochs=1"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0

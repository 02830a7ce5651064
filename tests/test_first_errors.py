"""The small mistakes of a first hour, each answered in one line that says what to do: a missing
file for predict (before torch is imported), a mistyped subcommand, an optimizer's name in another
case, a precision the device cannot run (before any data loads), ``next:`` hints that can be copied
as they are, and ``params NAME --describe``."""
from __future__ import annotations

import subprocess
import sys

import pytest

from torchclassics.cli import main
from torchclassics.core.errors import UserError


def test_predict_on_a_missing_file_says_so_on_stderr_with_status_2_before_torch_is_imported(tmp_path):
    script = ("import sys; from torchclassics.cli import main; code = main(['predict', 'runs/x', 'nope.png']); "
              "print('torch' in sys.modules, code)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.stdout.split() == ["False", "2"], done
    assert done.stderr.strip() == "torchclassics: error: predict: no such file: nope.png."


@pytest.mark.parametrize("typed, meant", [("rnu", "run"), ("evalute", "evaluate"), ("lsit", "list")])
def test_a_mistyped_subcommand_gets_a_suggestion(capsys, typed, meant):
    with pytest.raises(SystemExit) as stop:
        main([typed])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"did you mean '{meant}'?")


@pytest.mark.parametrize("key, typed, meant", [("optimizer", "Adamw", "AdamW"), ("optimizer", "rmsprop", "RMSprop"),
                                               ("scheduler.name", "steplr", "StepLR")])
def test_torch_names_in_another_case_suggest_the_right_class(capsys, key, typed, meant):
    sets = ["--set", f"{key}={typed}"] + (["--set", "scheduler.step_size=2"] if key.startswith("scheduler") else [])
    assert main(["params", "regression", *sets]) == 2
    assert f"did you mean '{meant}'?" in capsys.readouterr().err


def test_a_precision_the_device_cannot_run_is_refused_before_any_data_loads(tmp_path, monkeypatch):
    from torchclassics import registry, run

    experiment = registry.get("regression")

    def no_data(*args, **kwargs):
        raise AssertionError("the data was built before the precision was checked")

    monkeypatch.setattr(type(experiment), "build", no_data)
    with pytest.raises(UserError, match="precision=fp16 needs a CUDA GPU"):
        run("regression", out=tmp_path / "r", figures=False, precision="fp16", device="cpu")
    assert not (tmp_path / "r").exists()


def test_params_describe_shows_each_parameter_with_default_type_bounds_and_description(capsys):
    from torchclassics.params import sources

    assert main(["params", "regression", "--describe", "--set", "lr=0.1"]) == 0
    out = capsys.readouterr().out
    for key, rule in sources.schema("regression")["properties"].items():
        assert f"  {key} = " in out and rule["description"] in out, key
    assert "  lr = 0.1  (default 0.2; number > 0)" in out
    assert "  n_points = 100  (default 100; integer >= 2, <= 10000000)" in out
    assert '  precision = "fp32"  (default "fp32"; one of "fp32", "bf16", "fp16")' in out


@pytest.mark.integration
def test_next_hints_name_the_module_of_an_experiment_of_ones_own(tmp_path, capsys, monkeypatch):
    """A run of one's own experiment: its ``evaluate`` hint carries ``--module`` (without it, copying fails)."""
    import shlex

    monkeypatch.chdir(tmp_path)
    assert main(["init", "mine", ".", "--module", "mine.py"]) == 0
    capsys.readouterr()
    assert main(["run", "mine", "--module", "mine.py", "--out", "r", "--set", "epochs=1", "--no-figures", "-q"]) == 0
    hints = capsys.readouterr().out.split("next:")[1].strip().splitlines()
    evaluate = next(line.strip() for line in hints if "evaluate" in line)
    assert evaluate == "torchclassics evaluate r --module mine.py"
    assert main(shlex.split(evaluate)[1:]) == 0


@pytest.mark.integration
def test_search_retrain_command_can_be_copied_as_it_is(tmp_path, capsys, monkeypatch):
    import shlex

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TORCHCLASSICS_RUNS")
    assert main(["init", "mine", ".", "--module", "mine.py"]) == 0
    assert main(["search", "mine", "--module", "mine.py", "--trials", "2", "--set", "epochs=1"]) == 0
    hint = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("retrain the "))
    command = hint.split(": ", 1)[1]
    assert command.startswith("torchclassics run mine --params runs/") and "--module mine.py" in command, hint
    assert main([*shlex.split(command)[1:], "--no-figures", "-q"]) == 0

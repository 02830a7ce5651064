"""Extras that announce themselves: ``--version`` lists which are installed and what each enables; a
missing one's message gives the command for a release and for a clone; TensorBoard curves are a
run's option (on when installed, listed with the run's files)."""
from __future__ import annotations

import importlib.util

import pytest

from torchclassics.cli import main
from torchclassics.core import extras
from torchclassics.core.errors import UserError


def _without(monkeypatch, missing: str):
    real = importlib.util.find_spec
    monkeypatch.setattr(extras.importlib.util, "find_spec",
                        lambda name, *args: None if name == missing else real(name, *args))


def test_version_lists_each_extra_and_what_it_enables(capsys, monkeypatch):
    _without(monkeypatch, "botorch")
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("torchclassics ")
    for extra in extras.EXTRAS:
        assert any(line.split()[:1] == [extra.name] and extra.enables in line for line in lines), extra.name
    botorch = next(line for line in lines if line.split()[0] == "botorch")
    assert "missing" in botorch
    assert 'pip install "torchclassics[botorch]" (from PyPI) or pip install ".[botorch]" (in a clone)' in botorch


def test_asking_for_tensorboard_without_it_names_both_install_commands(tmp_path, monkeypatch):
    from torchclassics import run

    _without(monkeypatch, "tensorboard")
    with pytest.raises(UserError, match=r'pip install "torchclassics\[tensorboard\]" \(from PyPI\) or pip install '
                                        r'"\.\[tensorboard\]" \(in a clone\)'):
        run("regression", out=tmp_path / "r", epochs=1, figures=False, tensorboard=True)


@pytest.mark.integration
@pytest.mark.skipif(not extras.installed("tensorboard"), reason="TensorBoard not installed")
def test_tensorboard_curves_are_on_when_installed_listed_and_can_be_turned_off(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "regression", "--out", "on", "--set", "epochs=2", "--no-figures", "-q"]) == 0
    assert "  tensorboard/: TensorBoard curves (tensorboard --logdir on)" in capsys.readouterr().out
    assert any((tmp_path / "on" / "tensorboard").iterdir())
    assert main(["run", "regression", "--out", "off", "--set", "epochs=2", "--no-figures", "-q",
                 "--no-tensorboard"]) == 0
    assert "tensorboard" not in capsys.readouterr().out
    assert not (tmp_path / "off" / "tensorboard").exists()


def test_the_extras_listed_are_those_pyproject_declares():
    """core/extras.py names what `pip install "torchclassics[NAME]"` installs: the same names as pyproject's."""
    from pathlib import Path

    import tomllib

    from torchclassics.core.extras import EXTRAS

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    declared = set(pyproject["project"]["optional-dependencies"]) - {"dev"}
    assert {extra.name for extra in EXTRAS} == declared

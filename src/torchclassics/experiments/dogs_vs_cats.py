"""Dogs vs Cats (the book "Deep Learning with PyTorch", chapter 3): classify the images of a folder, reproducibly.

Kaggle's ``train/`` folder (``cat.0.jpg``, ``dog.0.jpg``: label from the prefix) or any
folder with one sub-folder per class. The listing is sorted before a seeded split (the
book's code gave different results on two machines because ``os.listdir`` order
differs), broken files are skipped with one warning, and the model is a small CNN
trained from scratch (the default: minutes on a CPU, nothing to download) or the
book's ResNet-18 transfer learning (ImageNet weights downloaded once with ``pretrained``).

The held-out part is a validation split of the folder: its metrics are ``val_loss`` and
``val_accuracy``, not ``test_*``.

Class names are kept with the weights (``Task.record["classes"]``, saved in every
checkpoint) and in the run's summary, so ``predict`` names classes without the data folder.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.errors import UserError
from ..data.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageBatches,
    ImageFolderData,
    RandomCropFlip,
    UnusableImage,
    load_image,
    normalise,
)
from ..engine.loop import Task, accuracy_sum
from ..models.resnet import ResNet18Classifier
from ..models.small_cnn import SmallCNN
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.plots import confusion_matrix, draw_image_grid, new_figure, save
from ._base import Experiment, draw_loss

GRID_IMAGES = 16
NO_DATA = (
    "dogs_vs_cats needs a folder of images: download train.zip from https://www.kaggle.com/c/dogs-vs-cats/data "
    "(a free Kaggle account), unzip it, and set data_root=path/to/train. A folder with one sub-folder "
    "per class works too. To try it offline, write synthetic shapes with "
    "`python -m torchclassics.data.shapes shapes/` and set data_root=shapes."
)


def check_params(params: dict) -> None:
    """What schema.json cannot say about this experiment's parameters; data_root is checked on use."""
    low, high = params["crop_scale"]
    if low > high:
        raise UserError(f"crop_scale={json.dumps(params['crop_scale'])}: [low, high] with low <= high, the range "
                        "of the area fraction a random crop keeps, e.g. [0.5, 1.0].")


def data_root(params: dict) -> Path:
    if not params.get("data_root"):
        raise UserError(NO_DATA)
    return Path(params["data_root"]).expanduser()


def build_model(params: dict, n_classes: int, pretrained: bool | None = None) -> nn.Module:
    if params["model"] == "resnet18":
        pretrained = params["pretrained"] if pretrained is None else pretrained
        return ResNet18Classifier(n_classes, pretrained=pretrained, finetune=params["finetune"])
    return SmallCNN(n_classes, width=params["cnn_width"])


def image_folder(params: dict, expected_classes=None) -> ImageFolderData:
    return ImageFolderData(data_root(params), params["image_size"], params["val_fraction"], params["seed"],
                           cache=params["cache_images"], cache_max_mb=params["cache_max_mb"],
                           expected_classes=expected_classes)


@experiment("dogs_vs_cats")
class DogsVsCats(Experiment):
    objective = Objective("val_accuracy", "max")

    def build(self, params, device):
        check_params(params)
        folder = image_folder(params)
        # Lists the folder (names only: cheap) and decodes one image per class: layout errors and a folder
        # of unreadable images surface before anything is written. The other pixels are read on first use.
        folder.check_readable()
        return make_task(params, device, list(folder.classes), build_model(params, len(folder.classes)), folder)

    def rebuild(self, params, device, record, need_data):
        """The Task of a finished run: class names from its checkpoint, the data folder read only by
        evaluate and figures, no pretrained weights (the checkpoint's replace them)."""
        check_params(params)
        classes = list(record.get("classes") or [])
        if not classes:
            raise UserError("this dogs_vs_cats run's checkpoint records no class names.")
        if need_data and not params.get("data_root"):
            raise UserError("this dogs_vs_cats run was trained without a data_root; nothing to validate on.")
        folder = image_folder(params, expected_classes=classes) if need_data else None
        return make_task(params, device, classes, build_model(params, len(classes), pretrained=False), folder)

    def example_input(self, task):
        size = task.context["image_size"]
        return torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))

    def results(self, run):
        return run.task.context["folder"].summary()

    # -- figures --------------------------------------------------------------------------------
    def figures(self, run, folder):
        classes = run.task.record["classes"]
        draw_loss(run, folder / "loss.png", "dogs_vs_cats: cross-entropy")
        found = validation_predictions(run.model, run.task.test, len(classes))
        confusion_matrix(found["true"], found["predicted"], classes, folder / "confusion.png",
                         title="validation confusion matrix")
        prediction_grid(found, classes, folder / "predictions.png")

    # -- predict --------------------------------------------------------------------------------
    def export_metadata(self, task):
        from ..data.images import IMAGENET_MEAN, IMAGENET_STD

        return {"classes": list(task.record["classes"]), "prepare": "image", "image_size": task.context["image_size"],
                "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}}

    def predict(self, run, inputs):
        model, classes, size = run.model.eval(), run.task.record["classes"], run.params["image_size"]
        return [predict_file(model, item, size, classes, run.device) if isinstance(item, Path) else
                {"file": item, "error": "a dogs_vs_cats run classifies image files, not texts"} for item in inputs]


def make_task(params: dict, device, classes: list[str], model: nn.Module, folder: ImageFolderData | None) -> Task:
    train = test = None
    if folder is not None:
        augment = RandomCropFlip(params["image_size"], params["crop_scale"]) if params["augment"] else None
        common = dict(batch_size=params["batch_size"], device=device, seed=params["seed"],
                      num_workers=params["num_workers"])
        train = ImageBatches(folder, "train", shuffle=True, augment=augment, **common)
        test = ImageBatches(folder, "val", **common)
    return Task(model=model, train=train, test=test, loss_fn=nn.CrossEntropyLoss(),
                metrics={"accuracy": accuracy_sum}, record={"classes": list(classes)}, held_out="val",
                context={"folder": folder, "image_size": params["image_size"]})


def predict_file(model: nn.Module, path: Path, size: int, classes: list[str], device) -> dict:
    """``{"file", "label", "probability"}`` or ``{"file", "error"}`` for one image file."""
    try:
        pixels = load_image(path, size)
    except UnusableImage as err:  # the reason in one line: no such file, a folder, too large, not an image
        return {"file": str(path), "error": str(err)}
    with torch.no_grad():
        probabilities = torch.softmax(model(normalise(pixels[None].to(device))), dim=1)[0]
    best = int(probabilities.argmax())
    return {"file": str(path), "label": classes[best], "probability": float(probabilities[best])}


@torch.no_grad()
def validation_predictions(model: nn.Module, data: ImageBatches, n_classes: int, keep: int = GRID_IMAGES) -> dict:
    """Every validation label and prediction, and for the grid the pixels of the first images of
    each class (``keep`` in all) and of up to ``keep // 2`` mistakes."""
    model.eval()
    found = {"true": [], "predicted": [], "shown": []}
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    per_class, shown_of_class, mistakes = max(1, keep // n_classes), [0] * n_classes, 0
    for inputs, targets in data.epoch(0):
        probabilities = torch.softmax(model(inputs), dim=1)
        confidence, best = probabilities.max(dim=1)
        for image, true, predicted, p in zip(inputs.cpu(), targets.tolist(), best.tolist(), confidence.tolist()):
            wrong = true != predicted
            if shown_of_class[true] < per_class or (wrong and mistakes < keep // 2):
                shown_of_class[true] += 1
                mistakes += wrong
                found["shown"].append({"image": (image * std + mean).clamp(0, 1), "true": true,
                                       "predicted": predicted, "probability": p})
            found["true"].append(true)
            found["predicted"].append(predicted)
    return found


def prediction_grid(found: dict, classes: list[str], path: Path, columns: int = 4) -> Path:
    """Validation images with predicted and true labels; mistakes first, titled in red."""
    shown = sorted(found["shown"], key=lambda s: s["true"] == s["predicted"])[:GRID_IMAGES]
    rows = max(1, -(-len(shown) // columns))
    fig = new_figure(2.2 * columns, 2.4 * rows + 0.4)
    wrong_total = sum(t != p for t, p in zip(found["true"], found["predicted"]))
    fig.suptitle(f"validation: {wrong_total} mistakes of {len(found['true'])} (red)")
    titles, colours = [], []
    for sample in shown:
        wrong = sample["true"] != sample["predicted"]
        title = f"{classes[sample['predicted']]} {sample['probability']:.2f}"
        titles.append(f"✗ {title}\ntrue: {classes[sample['true']]}" if wrong else title)
        colours.append("tab:red" if wrong else "black")
    if shown:  # one image of the whole grid: an axes per picture costs more than the picture
        images = np.stack([s["image"].permute(1, 2, 0).numpy() for s in shown])
        draw_image_grid(fig.add_subplot(1, 1, 1), images, columns, titles, colours, gap=4, fontsize=8)
    return save(fig, path)

"""ResNet-18 transfer learning (the book's Dogs vs Cats model): torchvision's network,
ImageNet weights from torch.hub's cache, a new last layer for the task's classes."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights
from torchvision.models.resnet import BasicBlock, ResNet

from ..core.errors import UserError

FINETUNE = ("all", "head")


def weights_path(weights=ResNet18_Weights.DEFAULT) -> Path:
    """Where torchvision keeps the weights: ``<torch.hub.get_dir()>/checkpoints/<file>``
    (``torch.hub.get_dir()`` is ``$TORCH_HOME/hub``, by default ``~/.cache/torch/hub``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def imagenet_state_dict(weights=ResNet18_Weights.DEFAULT) -> dict:
    """The pretrained weights: from the cache when there, else downloaded once; offline and
    not cached, a UserError that says which file to put where."""
    path = weights_path(weights)
    if not path.is_file():
        try:  # downloads to ``path``, checking the hash in the file name
            return torch.hub.load_state_dict_from_url(weights.url, model_dir=str(path.parent), map_location="cpu",
                                                      progress=False, check_hash=True, weights_only=True)
        except Exception as err:  # no network, a proxy, a bad download: all end the same way
            raise UserError(
                f"pretrained=true: the ResNet-18 ImageNet weights are not at {path} and could not be downloaded "
                f"({type(err).__name__}: {' '.join(str(err).split())[:120]}). Download {weights.url} where there "
                f"is internet and copy it to {path} (or set TORCH_HOME to a folder holding hub/checkpoints/"
                f"{path.name}), or train from random initialisation with pretrained=false."
            ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"{path} is not a readable weights file ({err}); delete it and download "
                        f"{weights.url} again.") from None


class ResNet18Classifier(ResNet):
    """torchvision's ResNet-18 (same layer names, so its state dict is a plain ResNet-18's)
    with a new ``fc`` for ``n_classes``.

    ``finetune="head"`` trains only ``fc``: the rest is frozen and its batch-norm
    statistics stay ImageNet's (those layers are kept in eval mode while training)."""

    def __init__(self, n_classes: int, pretrained: bool = True, finetune: str = "all"):
        if finetune not in FINETUNE:
            raise UserError(f"finetune={finetune!r}: choose one of {', '.join(FINETUNE)}.")
        super().__init__(BasicBlock, [2, 2, 2, 2])
        if pretrained:
            self.load_state_dict(imagenet_state_dict())
        self.fc = nn.Linear(self.fc.in_features, n_classes)
        self.finetune = finetune
        if finetune == "head":
            for name, parameter in self.named_parameters():
                parameter.requires_grad_(name.startswith("fc."))

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.finetune == "head":
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

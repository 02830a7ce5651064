"""scikit-learn estimators of the experiments, through skorch.

    from sklearn.model_selection import GridSearchCV, cross_val_score
    import torchclassics

    net = torchclassics.estimator("classification")           # a skorch NeuralNetClassifier
    cross_val_score(net, X, y, cv=3)                            # X float (N, 2), y int (N,)
    GridSearchCV(net, {"lr": [0.02, 0.1], "module__hidden": [10, 20]}, cv=3).fit(X, y)

The net is the experiment's own model class (``models/``), loss, optimizer, learning rate,
batch size and epochs, from its params.json through ``sources.resolve``: the same
defaults, the user's ./experiments/NAME/params.json, ``params_file``, ``sets`` and keyword
arguments, checked by the same rules. Model parameters become skorch's ``module__*``
(``hidden`` -> ``module__hidden``), so scikit-learn can search them.

Imported only when ``torchclassics.estimator`` is first used: it imports torch and skorch.
"""
from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.utils import is_dataset
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from .core.errors import UserError
from .models.cnn import CNN
from .models.lstm import RowLSTM
from .models.mlp import Net
from .params import sources
from .plugins import discovery


# -- the experiments' models, with their params.json names as constructor arguments --------------
class ClusterNet(Net):
    """classification's net (2 -> hidden -> 2); other widths by ``module__n_features``, ``module__n_classes``."""

    def __init__(self, hidden: int = 10, n_features: int = 2, n_classes: int = 2):
        super().__init__(n_features, hidden, n_classes)


class CurveNet(Net):
    """regression's net (1 -> hidden -> 1); other widths by ``module__n_features``, ``module__n_outputs``."""

    def __init__(self, hidden: int = 10, n_features: int = 1, n_outputs: int = 1):
        super().__init__(n_features, hidden, n_outputs)


class DigitCNN(CNN):
    """cnn_mnist's CNN, taking digits as (N, 28, 28), (N, 1, 28, 28) or flattened (N, 784):
    a scikit-learn scaler in a Pipeline hands back flat rows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, 1, 28, 28))


@dataclass(frozen=True)
class Recipe:
    """How one experiment becomes an estimator."""

    task: str                      # "classifier" | "regressor"
    module: type                   # built with the params named in module_params
    module_params: tuple           # params.json keys that are the module's constructor arguments
    criterion: type                # the experiment's loss
    inputs: str                    # the X that fit and predict take, for the docs and messages
    large_ops: bool = False        # convolutions: every CPU thread helps (as the experiment's cpu_threads)


RECIPES = {
    "classification": Recipe("classifier", ClusterNet, ("hidden",), nn.CrossEntropyLoss,
                             "float (N, 2) points, integer labels 0/1"),
    "regression": Recipe("regressor", CurveNet, ("hidden",), nn.MSELoss, "float (N, 1) x, float (N,) or (N, 1) y"),
    "cnn_mnist": Recipe("classifier", DigitCNN, (), nn.CrossEntropyLoss,
                        "float (N, 28, 28) or (N, 784) digits, integer labels 0-9", large_ops=True),
    "lstm_mnist": Recipe("classifier", RowLSTM, ("hidden", "cell"), nn.CrossEntropyLoss,
                         "float (N, 28, 28) or (N, 784) digits, integer labels 0-9"),
}
# The training keys every recipe honours (cuda_graphs only speeds the engine up: nothing to honour);
# the rest of a params.json describes the experiment's own data (n_per_class, data_root, ...) or
# figures, which an estimator fitted on the caller's X, y has not.
TRAINING_PARAMS = ("seed", "lr", "optimizer", "optimizer_args", "batch_size", "epochs", "scheduler",
                   "clip_grad_norm", "precision", "cuda_graphs", "test_batch_size")


# -- the nets ------------------------------------------------------------------------------------
def batched_loader(dataset, batch_size: int, shuffle: bool = False, **kwargs) -> DataLoader:
    """A DataLoader that takes each batch by one array of indices, not sample by sample and stacked
    (skorch's default): 100 epochs of classification's 200 points, 0.79 s -> 0.2 s."""
    order = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, batch_size=None, sampler=BatchSampler(order, batch_size, drop_last=False), **kwargs)


class _ExperimentNet:
    """What both nets add to skorch's: the experiment's seed, inputs as the model takes them, and
    the engine's CPU threads."""

    def __init__(self, module, *, seed: int = 0, large_ops: bool = False, **kwargs):
        super().__init__(module, **kwargs)
        self.seed = seed
        self.large_ops = large_ops

    @contextlib.contextmanager
    def _threads(self):
        """The engine's CPU thread rule (engine/threads.py): one thread for a tiny model (100 epochs of the
        2-10-2 net: 1.1 s with one thread, 12 s with two on a busy 2-core machine), every core for
        convolutions; never a count that depends on how busy the machine is."""
        from .engine import threads

        with threads.using(threads.planned(None, self.module_, threads.ALL_CORES if self.large_ops else None)):
            yield

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        with self._threads():
            return super().partial_fit(X, y, classes, **fit_params)

    def forward_iter(self, X, training=False, device="cpu"):
        with self._threads():
            yield from super().forward_iter(X, training, device)

    def initialize(self):
        # Seeded at each fit, as each run of the experiment: the same weights and batch order every time.
        torch.manual_seed(self.seed)
        return super().initialize()

    def get_dataset(self, X, y=None):
        if not is_dataset(X):
            # float32, whatever came in: a scaler hands back float64, the models are float32
            X, y = np.asarray(X, dtype=np.float32), None if y is None else self.as_target(y)
        return super().get_dataset(X, y)


class ExperimentClassifier(_ExperimentNet, NeuralNetClassifier):
    """A skorch NeuralNetClassifier with the experiment's seed; labels are class indices."""

    @staticmethod
    def as_target(y) -> np.ndarray:
        return np.asarray(y, dtype=np.int64)  # CrossEntropyLoss takes int64 class indices


class ExperimentRegressor(_ExperimentNet, NeuralNetRegressor):
    """A skorch NeuralNetRegressor with the experiment's seed; a 1-D y is taken as one column."""

    @staticmethod
    def as_target(y) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        return y.reshape(-1, 1) if y.ndim == 1 else y  # the net predicts (N, 1), as MSELoss compares

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        return super().partial_fit(X, None if y is None else self.as_target(y), classes, **fit_params)


# -- from params.json to a net ------------------------------------------------------------------
def recipe_of(name: str) -> Recipe:
    discovery.check_name(name)
    if name not in RECIPES:
        raise UserError(f"estimator: '{name}' has no scikit-learn estimator; these have: "
                        f"{', '.join(sorted(RECIPES))}.")
    return RECIPES[name]


def _check_keys_apply(name: str, recipe: Recipe, keys: Iterable[str]) -> None:
    """A key that would change nothing (the experiment's own data, its figures) is a mistake to say."""
    used = set(TRAINING_PARAMS) | set(recipe.module_params)
    unused = sorted({key.split(".")[0] for key in keys} - used)
    if unused:
        verb = "describes" if len(unused) == 1 else "describe"
        raise UserError(f"estimator {name}: {', '.join(unused)} {verb} the experiment's own data or figures; "
                        f"the estimator learns from the X, y given to fit ({recipe.inputs}). "
                        f"It takes: {', '.join(sorted(used))}.")


def optimizer_class(name: str) -> type:
    cls = getattr(torch.optim, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise UserError.for_option("optimizer", name, "not a torch.optim optimizer.")
    return cls


def callbacks_of(params: dict) -> list:
    """The scheduler and gradient clipping of params.json, as skorch callbacks (once per epoch, as the engine)."""
    from skorch.callbacks import GradientNormClipping, LRScheduler

    callbacks = []
    if params.get("scheduler"):
        spec = dict(params["scheduler"])
        name = spec.pop("name")
        if not hasattr(torch.optim.lr_scheduler, str(name)):
            raise UserError.for_option("scheduler", params["scheduler"],
                                       f"{name!r} is not in torch.optim.lr_scheduler (e.g. StepLR).")
        callbacks.append(("scheduler", LRScheduler(policy=name, step_every="epoch", **spec)))
    if params.get("clip_grad_norm") is not None:
        callbacks.append(("clip_grad_norm", GradientNormClipping(gradient_clip_value=params["clip_grad_norm"])))
    return callbacks


def net_kwargs(recipe: Recipe, params: dict, device: str) -> dict:
    """skorch's arguments from the resolved params."""
    from .engine.optim import optimizer_kwargs

    if params.get("precision", "fp32") != "fp32":
        raise UserError.for_option("precision", params["precision"], "is the engine's; the estimator trains in fp32.")
    optimizer = optimizer_class(params["optimizer"])
    return {
        "module": recipe.module,
        **{f"module__{key}": params[key] for key in recipe.module_params},
        "criterion": recipe.criterion,
        "optimizer": optimizer,
        **{f"optimizer__{k}": v for k, v in optimizer_kwargs(params, optimizer, None).items()},
        "lr": params["lr"],
        "batch_size": params["batch_size"],
        **({"iterator_valid__batch_size": params["test_batch_size"]} if "test_batch_size" in params else {}),
        "max_epochs": params["epochs"],
        "seed": params["seed"],
        "large_ops": recipe.large_ops,
        # As the engine: every sample trains (scikit-learn's cross-validation holds data out), batches
        # shuffled and taken by index.
        "train_split": None,
        "iterator_train": batched_loader,
        "iterator_valid": batched_loader,
        "iterator_train__shuffle": True,
        "callbacks": callbacks_of(params),
        "device": device,
        "verbose": 0,
    }


def estimator(name: str, *, params_file=None, sets: Iterable[str] = (), device: str = "cpu",
              **params: Any):
    """A skorch estimator of experiment ``name``: a classifier or a regressor, unfitted.

    ``params`` override the experiment's parameters (``lr=0.1``, ``hidden=20``, ``epochs=50``) by
    the rules of ``torchclassics run``; ``params_file`` (a params.json or search's
    best_params.json) and ``sets`` (``"optimizer_args.momentum=0.9"``) as there. Any skorch
    argument can be changed afterwards with ``set_params`` (``verbose=1`` prints each epoch).
    """
    recipe = recipe_of(name)
    sets = list(sets)
    resolved = sources.resolve(name, params_file=params_file, sets=sets, overrides=params)  # typos, types, ranges
    _check_keys_apply(name, recipe, [sources.parse_set(text)[0] for text in sets] + list(params))
    cls = ExperimentClassifier if recipe.task == "classifier" else ExperimentRegressor
    return cls(**net_kwargs(recipe, resolved, device))


class _CallableModule(types.ModuleType):
    """Importing this module binds ``torchclassics.estimator`` to it, over the package's lazy
    ``estimator`` function; calling it calls the function all the same."""

    def __call__(self, name: str, **kwargs):
        return estimator(name, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

"""Name -> experiment. Names and descriptions come from the package's data files
(defaults/<name>/), so listing and checking a name never import torch; the module
``experiments/<name>.py``, which registers its class with ``@experiment``, is imported
only when the experiment is used."""
from __future__ import annotations

import importlib

from . import config

_EXPERIMENTS: dict[str, type] = {}


def experiment(name: str):
    """Class decorator: ``@experiment("regression")`` makes the class runnable by name."""

    def register(cls):
        cls.name = name
        _EXPERIMENTS[name] = cls
        return cls

    return register


def names() -> list[str]:
    return config.experiment_names()


def listing() -> list[tuple[str, str]]:
    """(name, one-line description) of every experiment, without importing any of them."""
    return [(name, config.description(name)) for name in names()]


def get(name: str):
    """An instance of the experiment called ``name``; a clear error for an unknown name."""
    config.check_name(name)
    if name not in _EXPERIMENTS:
        importlib.import_module(f"{__package__}.experiments.{name}")
    return _EXPERIMENTS[name]()

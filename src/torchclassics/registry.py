"""Name -> experiment, and the decorator that registers one. Names and descriptions come from
data files (the package's defaults/<name>/, a plugin's experiments/<name>/) and, for
experiments of one's own, from entry points and the source of their modules, so listing and
checking a name never import torch; the module (``experiments/<name>.py``, or the plugin's),
which registers its class with ``@experiment``, is imported only when the experiment is used.

An experiment of one's own imports what it needs from here::

    from torchclassics.registry import Experiment, experiment

    @experiment("my_mlp")
    class MyMLP(Experiment):
        def build(self, params, device): ...
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from .core.errors import UserError
from .params.packaged import experiment_names
from .params.sources import description
from .plugins.discovery import Plugin, all_experiment_names, check_name, is_plugin, plugin_experiments
from .plugins.loading import import_file, import_plugin_module

_EXPERIMENTS: dict[str, type] = {}
_PACKAGE_EXPERIMENTS = f"{__package__}.experiments."
_import_file = import_file  # its old name here


def experiment(name: str):
    """Class decorator: ``@experiment("regression")`` makes the class runnable by name."""

    def register(cls):
        own_module = cls.__module__.startswith(_PACKAGE_EXPERIMENTS)
        if not own_module and name in experiment_names():
            raise UserError(f"{cls.__module__}.{cls.__qualname__}: '{name}' is the name of one of the package's "
                            "experiments; give yours another name.")
        cls.name = name
        _EXPERIMENTS[name] = cls
        return cls

    return register


def __getattr__(attribute: str):
    # The base class, for experiments of one's own; loaded on use: importing registry stays torch-free.
    if attribute == "Experiment":
        from .experiments._base import Experiment

        return Experiment
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


def names() -> list[str]:
    return all_experiment_names()


def listing() -> list[tuple[str, str]]:
    """(name, one-line description) of every experiment, without importing any of them."""
    return [(name, description(name)) for name in names()]


def get(name: str):
    """An instance of the experiment called ``name``; a clear error for an unknown name."""
    check_name(name)
    if name not in _EXPERIMENTS or _from_another_file(name):
        if is_plugin(name):
            _import_plugin(plugin_experiments()[name])
        else:
            importlib.import_module(f"{__package__}.experiments.{name}")
    return _EXPERIMENTS[name]()


def _from_another_file(name: str) -> bool:
    """Whether ``name`` was registered in this process by another file than the one its plugin names now
    (``--module b/mine.py`` after ``a/mine.py`` in one notebook): the file named now is the one to run."""
    if not is_plugin(name):
        return False
    source = plugin_experiments()[name].source
    if not source.endswith(".py"):
        return False
    registered = sys.modules.get(_EXPERIMENTS[name].__module__)
    return Path(getattr(registered, "__file__", "") or "").resolve() != Path(source).expanduser().resolve()


def _import_plugin(plugin: Plugin) -> None:
    """Import a plugin's module (see :mod:`.plugins.loading`) and make sure it registered ``plugin.name``."""
    module = import_plugin_module(plugin)
    class_name = plugin.source.partition(":")[2]
    if class_name:  # an entry point naming the class: registered under the entry point's name
        cls = getattr(module, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, __getattr__("Experiment"))):
            raise UserError(f"{plugin.origin}: {plugin.source} is not an Experiment subclass.")
        if plugin.name not in _EXPERIMENTS:
            experiment(plugin.name)(cls)
    if plugin.name not in _EXPERIMENTS:
        raise UserError(f"{plugin.origin}: importing {plugin.source} registered no experiment '{plugin.name}' "
                        f'(decorate its class with @experiment("{plugin.name}")).')

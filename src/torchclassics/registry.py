"""Name -> experiment. Names and descriptions come from data files (the package's
defaults/<name>/, a plugin's experiments/<name>/) and, for experiments of one's own, from
entry points and the source of their modules, so listing and checking a name never import
torch; the module (``experiments/<name>.py``, or the plugin's), which registers its class with
``@experiment``, is imported only when the experiment is used.

An experiment of one's own imports what it needs from here::

    from torchclassics.registry import Experiment, experiment

    @experiment("my_mlp")
    class MyMLP(Experiment):
        def build(self, params, device): ...
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from . import config
from .errors import UserError

_EXPERIMENTS: dict[str, type] = {}
_PACKAGE_EXPERIMENTS = f"{__package__}.experiments."


def experiment(name: str):
    """Class decorator: ``@experiment("regression")`` makes the class runnable by name."""

    def register(cls):
        own_module = cls.__module__.startswith(_PACKAGE_EXPERIMENTS)
        if not own_module and name in config.experiment_names():
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
    return config.all_experiment_names()


def listing() -> list[tuple[str, str]]:
    """(name, one-line description) of every experiment, without importing any of them."""
    return [(name, config.description(name)) for name in names()]


def get(name: str):
    """An instance of the experiment called ``name``; a clear error for an unknown name."""
    config.check_name(name)
    if name not in _EXPERIMENTS:
        if config.is_plugin(name):
            _import_plugin(config.plugin_experiments()[name])
        else:
            importlib.import_module(f"{__package__}.experiments.{name}")
    return _EXPERIMENTS[name]()


# -- experiments of one's own -----------------------------------------------------------------------
def _import_plugin(plugin: config.Plugin) -> None:
    """Import a plugin's module (errors in its code keep their traceback: it is the user's code to
    fix) and make sure it registered ``plugin.name``."""
    module_name, _, class_name = plugin.source.partition(":")
    module = _import_file(Path(plugin.source)) if plugin.is_file else _import_module(module_name, plugin)
    if class_name:  # an entry point naming the class: registered under the entry point's name
        cls = getattr(module, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, __getattr__("Experiment"))):
            raise UserError(f"{plugin.origin}: {plugin.source} is not an Experiment subclass.")
        if plugin.name not in _EXPERIMENTS:
            experiment(plugin.name)(cls)
    if plugin.name not in _EXPERIMENTS:
        raise UserError(f"{plugin.origin}: importing {plugin.source} registered no experiment '{plugin.name}' "
                        f'(decorate its class with @experiment("{plugin.name}")).')


def _import_module(module_name: str, plugin: config.Plugin):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):  # the plugin itself is missing, not one of its imports
            raise UserError(f"{plugin.origin}: no module named {module_name} (is its package installed "
                            "here?).") from None
        raise


def _import_file(path: Path):
    """A plugin given as a file: imported under its file name (or a private name if that is taken
    by another module), so its classes and dataclasses behave like those of any module."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise UserError(f"no such file: {path}.")
    name = path.stem
    taken = sys.modules.get(name)
    if taken is not None and Path(getattr(taken, "__file__", "") or "").resolve() == path:
        return taken
    if taken is not None or not name.isidentifier():
        name = f"torchclassics_plugin_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module

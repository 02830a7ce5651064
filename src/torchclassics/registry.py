"""Name -> experiment. Experiment modules register themselves with ``@experiment``."""
from __future__ import annotations

import difflib
import importlib
import pkgutil

from .errors import UserError

_EXPERIMENTS: dict[str, type] = {}


def experiment(name: str):
    """Class decorator: ``@experiment("regression")`` makes the class runnable by name."""

    def register(cls):
        cls.name = name
        _EXPERIMENTS[name] = cls
        return cls

    return register


def _import_all() -> None:
    from . import experiments as package

    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        if not module.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module}")


def _import_module_named(name: str) -> None:
    from . import experiments as package

    if name.isidentifier() and any(m.name == name for m in pkgutil.iter_modules(package.__path__)):
        importlib.import_module(f"{package.__name__}.{name}")


def names() -> list[str]:
    _import_all()
    return sorted(_EXPERIMENTS)


def get(name: str):
    """An instance of the experiment called ``name``; a clear error for an unknown name."""
    _import_module_named(name)  # the usual case: experiments/<name>.py, without importing the others
    if name not in _EXPERIMENTS:
        _import_all()
    if name not in _EXPERIMENTS:
        close = difflib.get_close_matches(name, _EXPERIMENTS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UserError(
            f"unknown experiment '{name}'.{hint} Known: {', '.join(sorted(_EXPERIMENTS))} "
            "(see `torchclassics list`)."
        )
    return _EXPERIMENTS[name]()

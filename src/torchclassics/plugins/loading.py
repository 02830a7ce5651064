"""Importing an experiment of one's own: its module runs only when the experiment is used.

The module is the user's code: an exception in it keeps its traceback (the user's bug to fix),
followed by one line naming the plugin's file; a module that calls ``sys.exit`` (``SystemExit``,
any code, 0 included) while being imported ends in that one line alone. Neither ends a command
with exit status 0 as if it had run.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path

from ..core.errors import UserError
from .discovery import Plugin, module_path


class PluginFailed(UserError):
    """Importing an experiment of one's own failed. The message (one line) names its file;
    ``details``, when the user's code raised, is that code's traceback, shown above the line."""

    def __init__(self, message: str, details: str | None = None):
        super().__init__(message)
        self.details = details


def import_plugin_module(plugin: Plugin):
    """The imported module of ``plugin``; a :class:`PluginFailed` if importing it raises or exits."""
    where = _file_of(plugin)
    try:
        if plugin.is_file:
            return import_file(Path(plugin.source))
        return _import_module(plugin)
    except UserError:
        raise
    except SystemExit as stop:
        raise PluginFailed(f"{plugin.origin}: importing {where} called SystemExit({stop.code!r}); a module of "
                           "experiments must not exit when imported (put that code under "
                           "`if __name__ == \"__main__\":`).") from None
    except Exception as err:
        raise PluginFailed(f"{plugin.origin}: importing {where} raised {type(err).__name__}: "
                           f"{' '.join(str(err).split())[:200]} (its traceback is above).",
                           details=_own_traceback(err, where)) from err


def guarded(plugin: Plugin, what: str, call):
    """``call()``, a method of an experiment of one's own (its ``build``): a SystemExit or an exception of
    its code ends in one line naming the plugin's file (the traceback above it), never in exit status 0."""
    where = _file_of(plugin)
    try:
        return call()
    except UserError:
        raise
    except SystemExit as stop:
        raise PluginFailed(f"{plugin.name}: {what} in {where} called SystemExit({stop.code!r}); an experiment "
                           "must raise an error, not exit.") from None
    except Exception as err:
        raise PluginFailed(f"{plugin.name}: {what} in {where} raised {type(err).__name__}: "
                           f"{' '.join(str(err).split())[:200]} (its traceback is above).",
                           details=_own_traceback(err, where)) from err


def _file_of(plugin: Plugin) -> str:
    try:
        path = module_path(plugin.module)
    except UserError:
        path = None
    return str(path.expanduser().resolve()) if path is not None else plugin.source


def _own_traceback(err: BaseException, where: str) -> str:
    """The traceback from the first frame of the plugin's own file (importlib's frames say nothing)."""
    tb = err.__traceback__
    while tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve() != Path(where):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(err), err, tb or err.__traceback__))


def _import_module(plugin: Plugin):
    module_name = plugin.module
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):  # the plugin itself is missing, not one of its imports
            raise UserError(f"{plugin.origin}: no module named {module_name} (is its package installed "
                            "here?).") from None
        raise


def import_file(path: Path):
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

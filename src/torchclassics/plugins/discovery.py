"""Experiments of one's own (plugins), found without importing them.

Three ways name one: an entry point in the ``torchclassics.experiments`` group of an installed
distribution, a module in ``$TORCHCLASSICS_PLUGINS`` (``.py`` files or ``package.module`` names,
separated like PATH), and ``--module`` on the command line (added to that variable, so that this
process and every one it starts find it). A module's experiment names are read from its source,
``@experiment("NAME")`` on its classes: listing stays instant, imports no torch and never runs
the user's code. A name the package has stays the package's.
"""
from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..core import messages
from ..core.errors import UserError
from ..params.packaged import experiment_names

ENTRY_POINT_GROUP = "torchclassics.experiments"
PLUGINS_VARIABLE = "TORCHCLASSICS_PLUGINS"


@dataclass(frozen=True)
class Plugin:
    """An experiment of one's own, found without importing it. ``source``: what to import (a .py
    file, ``package.module``, or for an entry point ``package.module:Class``); ``origin``: who named it."""

    name: str
    source: str
    origin: str

    @property
    def is_file(self) -> bool:
        return self.source.endswith(".py")

    @property
    def module(self) -> str:
        """The module part of ``source`` (an entry point may add ``:Class``)."""
        return self.source.split(":")[0]


def plugin_entries() -> list[str]:
    """The modules named in ``$TORCHCLASSICS_PLUGINS`` (``--module`` adds to it)."""
    return [e.strip() for e in os.environ.get(PLUGINS_VARIABLE, "").split(os.pathsep) if e.strip()]


def module_path(entry: str) -> Path | None:
    """The source file of a plugin entry: the .py file itself, or where ``package.module`` lives
    (finding it imports its parent packages, not the module); None if there is none."""
    if entry.endswith(".py"):
        return Path(entry).expanduser()
    try:
        spec = importlib.util.find_spec(entry)
    except (ImportError, ValueError):
        return None
    except (Exception, SystemExit) as err:  # a parent package's own code failed, or exited
        stopped = f"called SystemExit({err.code!r})" if isinstance(err, SystemExit) else f"raised {err!r}"
        raise UserError(f"{entry}: importing its package {stopped}.") from None
    return Path(spec.origin) if spec is not None and spec.origin else None


@functools.cache
def _decorated_names(path: str, modified_ns: int) -> tuple[str, ...]:
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    names = []
    for node in ast.walk(tree):
        for decorator in node.decorator_list if isinstance(node, ast.ClassDef) else []:
            called = decorator.func if isinstance(decorator, ast.Call) else None
            called_name = getattr(called, "id", None) or getattr(called, "attr", None)
            if called_name == "experiment" and decorator.args and isinstance(decorator.args[0], ast.Constant) \
                    and isinstance(decorator.args[0].value, str):
                names.append(decorator.args[0].value)
    return tuple(names)


def registered_names(path: Path) -> tuple[str, ...]:
    """The names a module registers with ``@experiment("name")`` on its classes, read from its
    source (not imported: listing stays instant and never runs the user's code)."""
    try:
        return _decorated_names(str(path.resolve()), path.stat().st_mtime_ns)
    except SyntaxError as err:
        raise UserError(f"{path}: line {err.lineno}: {err.msg}.") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UserError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}.") from None


def _named_plugins() -> list[Plugin]:
    """The experiments of $TORCHCLASSICS_PLUGINS's modules; one that cannot be read is noted and skipped."""
    found = []
    for entry in plugin_entries():
        try:
            path = module_path(entry)
            if path is None or not path.is_file():
                raise UserError(f"no such file or module: {entry}")
            names = registered_names(path)
        except UserError as err:
            messages.note_once(f"${PLUGINS_VARIABLE}: {err} (skipped)")
            continue
        found.extend(Plugin(name, entry, f"${PLUGINS_VARIABLE}") for name in names)
    return found


@functools.lru_cache(maxsize=8)
def _entry_points(search_path: tuple[str, ...]) -> tuple[Plugin, ...]:
    """The installed distributions' entry points in our group (cached per sys.path)."""
    from importlib.metadata import entry_points

    return tuple(Plugin(ep.name, ep.value, f"entry point of {ep.dist.name if ep.dist else 'a package'}")
                 for ep in entry_points(group=ENTRY_POINT_GROUP))


def plugin_experiments() -> dict[str, Plugin]:
    """Name -> :class:`Plugin` of every experiment of one's own: $TORCHCLASSICS_PLUGINS's (and
    --module's) first, then entry points. A name the package has stays the package's."""
    found: dict[str, Plugin] = {}
    packaged = set(experiment_names())
    for plugin in [*_named_plugins(), *_entry_points(tuple(sys.path))]:
        if plugin.name in packaged:
            messages.note_once(f"{plugin.origin} ({plugin.source}) calls its experiment '{plugin.name}', the name of "
                               "one of the package's: ignored; give it another name.")
        else:
            found.setdefault(plugin.name, plugin)
    return found


def all_experiment_names() -> list[str]:
    """The package's experiments and the user's own."""
    return sorted({*experiment_names(), *plugin_experiments()})


def is_plugin(name: str) -> bool:
    return name not in experiment_names() and name in plugin_experiments()


def check_name(name: str) -> None:
    """A UserError with a did-you-mean for a name neither the package nor a plugin has."""
    known = all_experiment_names()
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UserError(f"unknown experiment '{name}'.{hint} Known: {', '.join(known)} (see `torchclassics list`; "
                    f"your own experiment: --module FILE, ${PLUGINS_VARIABLE} or an entry point in the "
                    f"'{ENTRY_POINT_GROUP}' group).")


def add_plugin_modules(entries: list[str], source: str | None = None) -> None:
    """Check that each module (a .py file or ``package.module``) registers an experiment, and put it in
    $TORCHCLASSICS_PLUGINS, so this process and every one it starts (torchrun's, search's workers)
    find it. ``source``: how a mistake names where the entry came from (the CLI passes ``--module``;
    by default the API's argument, ``module=...``)."""
    added = []
    for entry in entries:
        path = module_path(entry)
        if path is None or not path.is_file():
            raise _bad_module(entry, f"no such {'file' if entry.endswith('.py') else 'module'}", source)
        names = registered_names(path)
        if not names:
            raise _bad_module(entry, 'registers no experiment; decorate an Experiment subclass with '
                                     '@experiment("NAME") (see docs/own_experiment.md)', source)
        taken = sorted(set(names) & set(experiment_names()))
        if taken:  # named on purpose: never run the package's experiment in its place
            raise _bad_module(entry, f"registers {', '.join(repr(n) for n in taken)}, the name of one of the "
                                     "package's experiments; give yours another name", source)
        added.append(str(path.resolve()) if entry.endswith(".py") else entry)
    if added:
        os.environ[PLUGINS_VARIABLE] = os.pathsep.join(dict.fromkeys([*added, *plugin_entries()]))


def _bad_module(entry: str, reason: str, source: str | None) -> UserError:
    if source is None:
        return UserError.for_option("module", entry, f"{reason}.")
    return UserError(f"{source} {entry}: {reason}.")


def plugin_folder_file(name: str, filename: str) -> Path | None:
    """A plugin's ``experiments/<name>/<filename>`` beside its module (a file, or where an entry
    point's module lives, found without importing it): found from any folder. A path that is there
    but is no readable file is returned too: reading it says what is wrong."""
    module = module_path(plugin_experiments()[name].module)
    if module is None:
        return None
    path = module.resolve().parent / "experiments" / name / filename
    return path if os.path.lexists(path) else None

"""Where an experiment's parameters come from, and how the sources are layered.

Each source is laid over the one before:

1. the package's ``defaults/<name>/params.json`` (a wheel carries them, so a run works anywhere);
2. the user's own ``experiments/<name>/params.json`` (``$TORCHCLASSICS_EXPERIMENTS/<name>/``, then
   ``./experiments/<name>/``): a course project's parameters, CS230 style;
3. a params file given by the caller (``--params``: a run's params.json, a partial one, or search's
   best_params.json);
4. ``key=value`` texts (``--set``), then keyword arguments of the API.

The result is checked by :mod:`.rules`. A mistake ends in one :class:`UserError` naming the
source, the key, the value and what is allowed. Every file is read defensively
(:func:`read_params`): a regular file of at most 1 MB, nesting limited, no key named twice; a
user's params.json that is there but cannot be read (a folder, a symbolic-link loop, no
permission) is an error, never skipped.

An experiment of one's own (:mod:`torchclassics.plugins`) has no packaged defaults: its
``experiments/<name>/params.json`` (the user's folders, else beside its module) is the base, and
its rules are the common ones, a type inferred from each default for the other keys, and its own
``experiments/<name>/schema.json`` over both.

Nothing here imports torch: listing, parameters and validation errors answer at once.
"""
from __future__ import annotations

import difflib
import functools
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core import jsonfile, messages
from ..core.errors import UserError
from ..plugins.discovery import check_name, is_plugin, plugin_experiments, plugin_folder_file
from . import rules
from .packaged import packaged_file

PARAMS_MAX_BYTES = 1_000_000
PACKAGED = "packaged default"
SET, KEYWORD, PARAMS_FILE = "--set", "keyword argument", "--params"
INLINE = (SET, KEYWORD)  # sources written before the key=value they set, not as "file: ..."


# -- the files -----------------------------------------------------------------------------------------
def read_params(path: str | Path) -> dict:
    """The JSON object in a params (or schema, or search) file; a UserError naming the file and what
    is wrong: not a regular file (a FIFO or device is refused at once, never read), over 1 MB,
    nested too deep, a key named twice, not JSON, not an object."""
    return jsonfile.read_object(path, PARAMS_MAX_BYTES)


def user_folders() -> list[Path]:
    """A user's project folders of experiments, first match wins."""
    folders = []
    if os.environ.get("TORCHCLASSICS_EXPERIMENTS"):
        folders.append(Path(os.environ["TORCHCLASSICS_EXPERIMENTS"]).expanduser())
    folders.append(Path.cwd() / "experiments")
    return folders


def user_file(name: str, filename: str = "params.json") -> Path | None:
    """The user's ``<folder>/<name>/<filename>``, first folder first. Anything there counts, a folder
    or a broken link too: reading it then says what is wrong, rather than the next source
    silently taking its place."""
    for folder in user_folders():
        path = folder / name / filename
        if os.path.lexists(path):
            return path
    return None


def experiment_file(name: str, filename: str) -> Path | None:
    """The user's copy of an experiment's file, else the package's (a plugin's: the one beside
    its module), else None."""
    path = user_file(name, filename)
    if path is not None:
        return path
    if is_plugin(name):
        return plugin_folder_file(name, filename)
    path = packaged_file(name, filename)
    return path if path.is_file() else None


@functools.cache
def packaged_defaults(name: str) -> dict:
    check_name(name)
    if is_plugin(name):
        raise UserError(f"'{name}' is your own experiment: the package has no defaults for it.")
    return read_params(packaged_file(name))


def defaults(name: str) -> dict:
    """The base layer of ``name``'s parameters: the packaged params.json, or a plugin's own
    ``experiments/<name>/params.json`` (read each time: the user edits it between runs)."""
    check_name(name)
    return plugin_defaults(name) if is_plugin(name) else packaged_defaults(name)


def defaults_source(name: str) -> str:
    """How errors name the base layer: "packaged default", or the plugin's params.json."""
    return str(plugin_params_file(name)) if is_plugin(name) else PACKAGED


# -- an experiment of one's own ----------------------------------------------------------------------------
def plugin_params_file(name: str) -> Path:
    path = user_file(name) or plugin_folder_file(name, "params.json")
    if path is None:
        plugin = plugin_experiments()[name]
        raise UserError(f"'{name}' is your own experiment ({plugin.source}); its parameters go in "
                        f"experiments/{name}/params.json, and there is none in {', '.join(map(str, user_folders()))}"
                        f" or beside its module (`torchclassics init {name} --module "
                        f"FILE` starts one).")
    return path


def plugin_defaults(name: str) -> dict:
    path = plugin_params_file(name)
    values = dict(read_params(path))
    named = values.pop("experiment", name)
    if named != name:
        raise UserError(f"{path} holds parameters of the '{named}' experiment, not '{name}'.")
    # Every run records the CPU threads it trained with (engine/threads.py), an experiment of one's own too.
    values.setdefault("threads", None)
    return values


def plugin_description(name: str) -> str:
    """Its schema.json's "description", else one line saying where it comes from."""
    path = experiment_file(name, "schema.json")
    described = read_params(path).get("description") if path else None
    return described or f"your own experiment ({plugin_experiments()[name].source})"


def rules_note(name: str) -> str | None:
    """For a plugin: which rule each parameter follows (its schema.json, common, inferred)."""
    if not is_plugin(name):
        return None
    by_origin: dict[str, list[str]] = {}
    for key, rule in schema(name)["properties"].items():
        by_origin.setdefault(rule["x-rule"], []).append(key)
    shown = "; ".join(f"{origin}: {', '.join(keys)}" for origin, keys in by_origin.items())
    return f"{name} is your own experiment ({plugin_experiments()[name].source}); its rules come from {shown}."


# -- the rules of one experiment ---------------------------------------------------------------------------
def schema(name: str) -> dict:
    """The JSON Schema of ``name``'s params (see :mod:`.rules`): for exactly the keys of its
    params.json (the packaged one, or a plugin's), with its ``x-rules``."""
    if is_plugin(name):
        path = experiment_file(name, "schema.json")
        own = read_params(path) if path else {}
        return rules.plugin_schema(plugin_defaults(name), own, str(path), plugin_description(name))
    return _packaged_schema(name)


@functools.cache
def _packaged_schema(name: str) -> dict:
    return rules.packaged_schema(name, list(packaged_defaults(name)), read_params(packaged_file(name, "schema.json")))


def description(name: str) -> str:
    if is_plugin(name):
        return plugin_description(name)
    return schema(name)["description"]


# -- the layers ---------------------------------------------------------------------------------------------
class Layers:
    """Parameters built source by source, remembering where each top-level value came from, and in
    which layer (a rule between two keys blames the one set last)."""

    def __init__(self, name: str):
        self.name = name
        self.defaults = defaults(name)
        self.params = json.loads(json.dumps(self.defaults))  # a deep copy of plain JSON
        self.sources = {key: defaults_source(name) for key in self.params}
        self.layer = {key: 0 for key in self.params}
        self.layers = 0
        self.schema = schema(name)
        self.rules = self.schema["properties"]

    def _from(self, key: str, source: str) -> None:
        self.sources[key], self.layer[key] = source, self.layers

    # -- files -----------------------------------------------------------------------------------
    def add_file(self, values: dict, source: str, partial_note: bool = False) -> None:
        """Lay a params file over what is there; its keys must be known, its experiment this one."""
        self.layers += 1
        values = dict(values)
        named = values.pop("experiment", self.name)
        if named != self.name:
            raise UserError(f"{source} holds parameters of the '{named}' experiment, not '{self.name}'.")
        for key in values:
            if key not in self.rules:
                raise self.unknown(key, source)
        missing = [key for key in self.params if key not in values]
        if missing and partial_note:
            shown = ", ".join(f"{k}={json.dumps(self.params[k])}" for k in missing)
            messages.note(f"{source} does not set {shown}: the packaged defaults apply "
                          f"(`torchclassics params {self.name}` prints every key).")
        for key, value in values.items():
            self.params[key] = value
            self._from(key, source)

    # -- one key -----------------------------------------------------------------------------------
    def set(self, key: str, raw: Any, source: str) -> None:
        """``key`` (dotted keys reach into objects: ``optimizer_args.momentum``) set to ``raw``: a
        command-line string is read as the rule's type; other values are taken as they are."""
        self.layers += 1
        top, *path = key.split(".")
        if top not in self.rules:
            raise self.unknown(top, f"{source} {key}={raw}" if source in INLINE else source)
        self._from(top, source)
        try:
            value = raw if not isinstance(raw, str) else from_text(raw, rules.types_of(self.rules[top]) if not path
                                                                   else set())
        except ValueError as err:
            raise self.error(top, f"{key}={raw}: {err}") from None
        if not path:
            self.params[top] = value
            return
        target = self.params
        for depth, part in enumerate([top, *path[:-1]]):
            if target.get(part) is None:
                target[part] = {}  # null objects (scheduler) and new kwargs become objects
            target = target[part]
            if not isinstance(target, dict):
                raise self.error(top, f"{key}: '{'.'.join([top, *path][:depth + 1])}' is "
                                      f"{json.dumps(target)}, not an object")
        target[path[-1]] = value

    def unknown(self, key: str, source: str) -> UserError:
        close = difflib.get_close_matches(key, list(self.rules), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return UserError(f"{source}: unknown parameter '{key}' of {self.name}.{hint} "
                         f"Known: {', '.join(sorted(self.rules))}.")

    # -- the whole ---------------------------------------------------------------------------------
    def validated(self) -> dict:
        rules.check(self, self.schema)
        return self.normalised()

    def error(self, key: str, message: str) -> UserError:
        source = self.sources.get(key, defaults_source(self.name))
        return UserError(f"{source} {message}." if source in INLINE else f"{source}: {message}.")

    def last_set(self, keys: list[str]) -> str:
        """Of ``keys``, the one whose value came from the latest source (the first, among equals)."""
        return max(keys, key=lambda key: self.layer.get(key, 0))

    def normalised(self) -> dict:
        params = dict(self.params)
        for key, rule in self.rules.items():
            if rules.integer_valued(rule) and isinstance(params[key], float):
                params[key] = int(params[key])  # JSON Schema counts 2.0 as an integer
        if isinstance(params.get("data_root"), str):
            # absolute, so evaluate and predict find the data from any working directory
            params["data_root"] = str(Path(params["data_root"]).expanduser().resolve())
        return params


def from_text(text: str, types: set[str]) -> Any:
    """A command-line value read as the rule's JSON type: ``3`` -> 3, ``SGD,Adam`` -> a list,
    ``null`` -> None; a string stays a string where only strings are allowed. A ValueError for JSON
    that names a key twice or nests too deep (the rules a params file follows)."""
    text = text.strip()
    if "null" in types and text.lower() in ("null", "none"):
        return None
    if types and types <= {"string", "null"}:
        return text
    if "array" in types and not text.startswith("["):
        return [from_text(part, set()) for part in text.split(",") if part.strip()]
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except jsonfile.DuplicateKey as err:
        raise ValueError(f"names the key {str(err)!r} twice in one object; keep one") from None
    except RecursionError:
        raise ValueError(f"nests deeper than {jsonfile.MAX_DEPTH} levels") from None
    except json.JSONDecodeError:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        return text


def _unique_keys(pairs: list) -> dict:
    found = {}
    for key, value in pairs:
        if key in found:
            raise jsonfile.DuplicateKey(key)
        found[key] = value
    return found


# -- the sources ----------------------------------------------------------------------------------------
def parse_set(text: str) -> tuple[str, str]:
    """``"lr=0.01"`` -> ``("lr", "0.01")``."""
    key, sep, value = text.partition("=")
    if not sep:
        raise UserError(f"{SET} '{text}': expected key=value, e.g. {SET} lr=0.01.")
    if not key.strip():
        raise UserError(f"{SET} '{text}': the key before '=' is empty.")
    return key.strip(), value.strip()


def params_file_values(path: str | Path) -> tuple[dict, str | None]:
    """The parameters in a params file and the experiment it names (if any): a run's params.json,
    a partial set, or search's best_params.json (its ``best_params``)."""
    data = read_params(Path(path))
    if isinstance(data.get("best_params"), dict) and "study" in data:
        return dict(data["best_params"]), data.get("experiment")
    return data, data.get("experiment")


def resolve(name: str, *, params_file: str | Path | None = None, sets: Iterable[str] = (),
            overrides: dict | None = None, saved: tuple[dict, str] | None = None) -> dict:
    """The parameters one run uses, validated. ``saved``: (a run's own params.json, its path), for
    ``--resume``, replaces the user's files as the base."""
    layers = Layers(name)
    if saved is not None:
        layers.add_file(saved[0], saved[1], partial_note=True)
    elif not is_plugin(name):  # a plugin's own params.json is its base already
        user = user_file(name)
        if user is not None:
            layers.add_file(read_params(user), str(user), partial_note=True)
    if params_file is not None:
        values, named = params_file_values(params_file)
        layers.add_file({**values, **({"experiment": named} if named else {})}, f"{PARAMS_FILE} {params_file}")
    for text in sets:
        layers.set(*parse_set(text), SET)
    for key, value in (overrides or {}).items():
        layers.set(key, value, KEYWORD)
    return layers.validated()

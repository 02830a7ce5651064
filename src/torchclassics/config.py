"""Experiment parameters: where they come from, and one validation for all of them.

Each source is laid over the one before:

1. the package's ``defaults/<name>/params.json`` (a wheel carries them, so a run works anywhere);
2. the user's own ``experiments/<name>/params.json`` (``$TORCHCLASSICS_EXPERIMENTS/<name>/``, then
   ``./experiments/<name>/``): a course project's parameters, CS230 style;
3. a file given with ``--params`` (a run's params.json, a partial one, or search's best_params.json);
4. ``--set KEY=VALUE`` on the command line, or keyword arguments of the API.

The result is checked against the experiment's rules: ``defaults/<name>/schema.json`` laid over
``defaults/common.schema.json`` (JSON Schema), which declares every key's type and range next to
the experiment's parameters. Every number must be finite. A mistake ends in one
:class:`UserError` naming the source, the key, the value and what is allowed.

An experiment of one's own (a plugin: an entry point, ``--module FILE`` or
``$TORCHCLASSICS_PLUGINS``) has no packaged defaults: its ``experiments/<name>/params.json`` is
the base, and its rules are the common ones, a type inferred from each default for the other
keys, and its own ``experiments/<name>/schema.json`` over both.

Nothing here imports torch: listing, parameters and validation errors answer at once.
"""
from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
import json
import math
import os
import re
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .core import files as atomic
from .errors import UserError

DEFAULTS = Path(__file__).resolve().parent / "defaults"
PACKAGED = "packaged default"
INLINE = ("--set", "keyword argument")  # sources written before the key=value they set, not as "file: ..."
# Lesson names for a torch.optim class with particular arguments (optimizers experiment only).
OPTIMIZER_ALIASES = {"Momentum": "SGD"}
# Schedulers that need Python objects (functions, other schedulers): params.json cannot hold them.
UNUSABLE_SCHEDULERS = {"LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler", "LRScheduler"}


# -- where the files are ------------------------------------------------------------------------
def experiment_names() -> list[str]:
    """Every experiment the package ships, by its folder in defaults/."""
    return sorted(p.parent.name for p in DEFAULTS.glob("*/params.json"))


def all_experiment_names() -> list[str]:
    """The package's experiments and the user's own (plugins)."""
    return sorted({*experiment_names(), *plugin_experiments()})


def is_plugin(name: str) -> bool:
    return name not in experiment_names() and name in plugin_experiments()


def packaged_file(name: str, filename: str = "params.json") -> Path:
    return DEFAULTS / name / filename


def user_folders() -> list[Path]:
    """A user's project folders of experiments, first match wins."""
    folders = []
    if os.environ.get("TORCHCLASSICS_EXPERIMENTS"):
        folders.append(Path(os.environ["TORCHCLASSICS_EXPERIMENTS"]).expanduser())
    folders.append(Path.cwd() / "experiments")
    return folders


def user_file(name: str, filename: str = "params.json") -> Path | None:
    for folder in user_folders():
        path = folder / name / filename
        if path.is_file():
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


def read_json(path: Path) -> dict:
    """The JSON object in ``path``; a UserError naming the file and what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON: {err.msg} at line {err.lineno}.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}.") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a JSON {type(data).__name__}, not an object.")
    return data


@functools.lru_cache(maxsize=None)
def packaged_defaults(name: str) -> dict:
    check_name(name)
    if is_plugin(name):
        raise UserError(f"'{name}' is your own experiment: the package has no defaults for it.")
    return read_json(packaged_file(name))


def defaults(name: str) -> dict:
    """The base layer of ``name``'s parameters: the packaged params.json, or a plugin's own
    ``experiments/<name>/params.json`` (read each time: the user edits it between runs)."""
    check_name(name)
    return plugin_defaults(name) if is_plugin(name) else packaged_defaults(name)


def defaults_source(name: str) -> str:
    """How errors name the base layer: "packaged default", or the plugin's params.json."""
    return str(plugin_params_file(name)) if is_plugin(name) else PACKAGED


@functools.lru_cache(maxsize=None)
def _common_rules() -> dict:
    return read_json(DEFAULTS / "common.schema.json")["properties"]


def schema(name: str) -> dict:
    """The JSON Schema of ``name``'s params: common rules, the experiment's own over them,
    for exactly the keys of its params.json (the packaged one, or a plugin's)."""
    return plugin_schema(name) if is_plugin(name) else _packaged_schema(name)


@functools.lru_cache(maxsize=None)
def _packaged_schema(name: str) -> dict:
    own = read_json(packaged_file(name, "schema.json"))
    rules = {**_common_rules(), **own.get("properties", {})}
    keys = list(packaged_defaults(name))
    missing = [key for key in keys if key not in rules]
    if missing:  # a packaging bug, caught by the test suite
        raise RuntimeError(f"defaults/{name}: no rule for {', '.join(missing)} in schema.json")
    return {"type": "object", "description": own.get("description", ""), "required": keys,
            "additionalProperties": False, "properties": {key: rules[key] for key in keys}}


def description(name: str) -> str:
    if is_plugin(name):
        return plugin_description(name)
    return schema(name)["description"]


# -- torch's names, read without importing torch -----------------------------------------------
@functools.lru_cache(maxsize=None)
def _torch_all(relative: str) -> tuple[str, ...] | None:
    """``__all__`` of a torch source file, parsed (importing torch takes seconds); None if unreadable."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return None
    try:
        tree = ast.parse((Path(spec.origin).parent / relative).read_text(encoding="utf-8"))
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if any(getattr(t, "id", None) == "__all__" for t in targets):
                return tuple(ast.literal_eval(node.value))
    except (OSError, SyntaxError, ValueError):
        pass
    return None


def optimizer_names() -> list[str] | None:
    names = _torch_all("optim/__init__.py")
    return None if names is None else sorted(n for n in names if n[:1].isupper() and n != "Optimizer")


def scheduler_names() -> list[str] | None:
    names = _torch_all("optim/lr_scheduler.py")
    return None if names is None else sorted(n for n in names if n[:1].isupper() and n not in UNUSABLE_SCHEDULERS)


def _names_of(kind: str) -> list[str] | None:
    if kind == "optimizer":
        return optimizer_names()
    if kind == "optimizer-or-alias":
        names = optimizer_names()
        return None if names is None else sorted(names + list(OPTIMIZER_ALIASES))
    return scheduler_names()


# -- validation ------------------------------------------------------------------------------
def _validator(rules: dict):
    from jsonschema import Draft202012Validator, ValidationError, validators

    def names(validator, kind, instance, _schema):
        allowed = _names_of(kind)
        if isinstance(instance, str) and allowed is not None and instance not in allowed:
            close = difflib.get_close_matches(instance, allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            what = "torch.optim.lr_scheduler class" if kind == "scheduler" else "torch.optim optimizer"
            yield ValidationError(f"not a {what}; {hint}allowed: {', '.join(allowed)}")

    return validators.extend(Draft202012Validator, {"x-names": names})(rules)


_COMPARISONS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
_TYPE_NAMES = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "array": "a list", "object": "an object", "null": "null"}


def _types(rule: dict) -> set[str]:
    """The JSON types a rule allows (through anyOf and enum too)."""
    found = set()
    kinds = rule.get("type")
    if kinds:
        found.update([kinds] if isinstance(kinds, str) else kinds)
    for option in rule.get("anyOf", []):
        found |= _types(option)
    for value in rule.get("enum", []):
        found.add({str: "string", bool: "boolean", int: "integer", float: "number"}.get(type(value), "null"))
    return found


def _why(error) -> str:
    """What a jsonschema error means, in the words of this project."""
    if error.validator == "anyOf":  # null or something: explain the something
        options = [e for e in error.context if not (e.validator == "type" and e.validator_value == "null")]
        if options:
            from jsonschema.exceptions import best_match

            why = _why(best_match(options))
            allows_null = any(e.validator == "type" and e.validator_value == "null" for e in error.context)
            return f"{why}{' (or null)' if allows_null else ''}"
    if error.validator in _COMPARISONS:
        return f"must be {_COMPARISONS[error.validator]} {error.validator_value}"
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return "expected " + " or ".join(_TYPE_NAMES.get(t, t) for t in wanted)
    if error.validator == "enum":
        return "choose one of " + ", ".join(json.dumps(v) for v in error.validator_value)
    if error.validator in ("minItems", "maxItems"):
        count = error.validator_value
        return f"needs {'at least' if error.validator == 'minItems' else 'at most'} {count} item{'s' if count != 1 else ''}"
    if error.validator == "uniqueItems":
        return "names an item twice"
    if error.validator == "minLength":
        return "must not be empty"
    if error.validator == "required":
        return f"needs {', '.join(repr(k) for k in error.validator_value if k not in error.instance)}"
    return error.message


def _shown(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value, default=str)}"


def _non_finite(value: Any, key: str) -> tuple[str, Any] | None:
    """The first NaN or infinity inside ``value``: (dotted key, number), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return key, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for sub, item in items:
        found = _non_finite(item, f"{key}.{sub}" if isinstance(value, dict) else f"{key}[{sub}]")
        if found:
            return found
    return None


class Layers:
    """Parameters built source by source, remembering where each top-level value came from."""

    def __init__(self, name: str):
        self.name = name
        self.defaults = defaults(name)
        self.params = json.loads(json.dumps(self.defaults))  # a deep copy of plain JSON
        self.sources = {key: defaults_source(name) for key in self.params}
        self.rules = schema(name)["properties"]

    # -- files -----------------------------------------------------------------------------------
    def add_file(self, values: dict, source: str, partial_note: bool = False) -> None:
        """Lay a params file over what is there; its keys must be known, its experiment this one."""
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
            print(f"torchclassics: note: {source} does not set {shown}: the packaged defaults apply "
                  f"(`torchclassics params {self.name}` prints every key).", file=sys.stderr)
        for key, value in values.items():
            self.params[key], self.sources[key] = value, source

    # -- one key -----------------------------------------------------------------------------------
    def set(self, key: str, raw: Any, source: str) -> None:
        """``key`` (dotted keys reach into objects: ``optimizer_args.momentum``) set to ``raw``: a
        command-line string is read as the rule's type; other values are taken as they are."""
        top, *path = key.split(".")
        if top not in self.rules:
            raise self.unknown(top, f"{source} {key}={raw}" if source in INLINE else source)
        self.sources[top] = source
        if not path:
            self.params[top] = from_text(raw, _types(self.rules[top])) if isinstance(raw, str) else raw
            return
        target = self.params
        for depth, part in enumerate([top, *path[:-1]]):
            if target.get(part) is None:
                target[part] = {}  # null objects (scheduler) and new kwargs become objects
            target = target[part]
            if not isinstance(target, dict):
                raise self.error(top, f"{key}: '{'.'.join([top, *path][:depth + 1])}' is "
                                      f"{json.dumps(target)}, not an object")
        target[path[-1]] = from_text(raw, set()) if isinstance(raw, str) else raw

    def unknown(self, key: str, source: str) -> UserError:
        close = difflib.get_close_matches(key, list(self.rules), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return UserError(f"{source}: unknown parameter '{key}' of {self.name}.{hint} "
                         f"Known: {', '.join(sorted(self.rules))}.")

    # -- the whole ---------------------------------------------------------------------------------
    def validated(self) -> dict:
        for key, value in self.params.items():
            bad = _non_finite(value, key)
            if bad:
                raise self.error(key, f"{_shown(*bad)}: not a finite number")
        errors = sorted(_validator(schema(self.name)).iter_errors(self.params), key=lambda e: list(e.absolute_path))
        if errors:
            error = errors[0]
            path = list(error.absolute_path)
            if not path:  # a top-level problem: an unknown or missing key
                raise UserError(f"{self.name} parameters: {error.message}.")
            key = path[0] + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
            default = self.defaults.get(path[0])
            inferred = (f"; the rule is its default's type: write experiments/{self.name}/schema.json for your own"
                        if self.rules.get(path[0], {}).get("x-rule") == INFERRED else "")
            raise self.error(path[0], f"{_shown(key, error.instance)}: {_why(error)} (default "
                                      f"{_shown(path[0], default).split('=', 1)[1]}{inferred})")
        return self.normalised()

    def error(self, key: str, message: str) -> UserError:
        source = self.sources.get(key, defaults_source(self.name))
        return UserError(f"{source} {message}." if source in INLINE else f"{source}: {message}.")

    def normalised(self) -> dict:
        params = dict(self.params)
        for key, rule in self.rules.items():
            if _types(rule) == {"integer"} and isinstance(params[key], float):
                params[key] = int(params[key])  # JSON Schema counts 2.0 as an integer
        if isinstance(params.get("data_root"), str):
            # absolute, so evaluate and predict find the data from any working directory
            params["data_root"] = str(Path(params["data_root"]).expanduser().resolve())
        return params


def from_text(text: str, types: set[str]) -> Any:
    """A command-line value read as the rule's JSON type: ``3`` -> 3, ``SGD,Adam`` -> a list,
    ``null`` -> None; a string stays a string where only strings are allowed."""
    text = text.strip()
    if "null" in types and text.lower() in ("null", "none"):
        return None
    if types and types <= {"string", "null"}:
        return text
    if "array" in types and not text.startswith("["):
        return [from_text(part, set()) for part in text.split(",") if part.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        return text


# -- the sources --------------------------------------------------------------------------------
def parse_set(text: str) -> tuple[str, str]:
    """``"lr=0.01"`` -> ``("lr", "0.01")``."""
    key, sep, value = text.partition("=")
    if not sep:
        raise UserError(f"--set '{text}': expected key=value, e.g. --set lr=0.01.")
    if not key.strip():
        raise UserError(f"--set '{text}': the key before '=' is empty.")
    return key.strip(), value.strip()


def params_file_values(path: str | Path) -> tuple[dict, str | None]:
    """The parameters in a ``--params`` file and the experiment it names (if any): a run's
    params.json, a partial set, or search's best_params.json (its ``best_params``)."""
    data = read_json(Path(path))
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
            layers.add_file(read_json(user), str(user), partial_note=True)
    if params_file is not None:
        values, named = params_file_values(params_file)
        layers.add_file({**values, **({"experiment": named} if named else {})}, f"--params {params_file}")
    for text in sets:
        layers.set(*parse_set(text), "--set")
    for key, value in (overrides or {}).items():
        layers.set(key, value, "keyword argument")
    return layers.validated()


# -- experiments of one's own (plugins) ------------------------------------------------------------
ENTRY_POINT_GROUP = "torchclassics.experiments"
PLUGINS_VARIABLE = "TORCHCLASSICS_PLUGINS"
# Where each of a plugin's parameter rules comes from (the "x-rule" of its schema's properties).
OWN, COMMON, INFERRED = "its schema.json", "the common rules", "its default's type"


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


def plugin_entries() -> list[str]:
    """The modules named in ``$TORCHCLASSICS_PLUGINS`` (``--module`` adds to it): .py files or
    importable module names, separated like PATH."""
    return [e.strip() for e in os.environ.get(PLUGINS_VARIABLE, "").split(os.pathsep) if e.strip()]


def module_path(entry: str) -> Path | None:
    """The source file of a plugin entry: the .py file itself, or where ``package.module`` lives
    (finding it imports its parent packages, not the module)."""
    if entry.endswith(".py"):
        return Path(entry).expanduser()
    try:
        spec = importlib.util.find_spec(entry)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


@functools.lru_cache(maxsize=None)
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
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}.") from None


_NOTED: set[str] = set()


def _note_once(message: str) -> None:
    if message not in _NOTED:
        _NOTED.add(message)
        print(f"torchclassics: note: {message}", file=sys.stderr)


def _named_plugins() -> list[Plugin]:
    """The experiments of $TORCHCLASSICS_PLUGINS's modules; one that cannot be read is noted and skipped."""
    found = []
    for entry in plugin_entries():
        path = module_path(entry)
        try:
            if path is None or not path.is_file():
                raise UserError(f"no such file or module: {entry}")
            names = registered_names(path)
        except UserError as err:
            _note_once(f"${PLUGINS_VARIABLE}: {err} (skipped)")
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
            _note_once(f"{plugin.origin} ({plugin.source}) calls its experiment '{plugin.name}', the name of one "
                       "of the package's: ignored; give it another name.")
        else:
            found.setdefault(plugin.name, plugin)
    return found


def add_plugin_modules(entries: list[str]) -> None:
    """``--module FILE`` (or ``package.module``): check that each registers an experiment, and put it
    in $TORCHCLASSICS_PLUGINS, so this process and every one it starts (torchrun's, search's
    workers) find it."""
    added = []
    for entry in entries:
        path = module_path(entry)
        if path is None or not path.is_file():
            raise UserError(f"--module {entry}: no such {'file' if entry.endswith('.py') else 'module'}.")
        if not registered_names(path):
            raise UserError(f"--module {entry}: registers no experiment; decorate an Experiment subclass with "
                            '@experiment("NAME") (see docs/own_experiment.md).')
        added.append(str(path.resolve()) if entry.endswith(".py") else entry)
    if added:
        os.environ[PLUGINS_VARIABLE] = os.pathsep.join(dict.fromkeys([*added, *plugin_entries()]))


def plugin_folder_file(name: str, filename: str) -> Path | None:
    """A plugin's ``experiments/<name>/<filename>`` beside its module (a file, or where an entry
    point's module lives, found without importing it): found from any folder."""
    module = module_path(plugin_experiments()[name].source.split(":")[0])
    if module is None:
        return None
    path = module.resolve().parent / "experiments" / name / filename
    return path if path.is_file() else None


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
    values = dict(read_json(path))
    named = values.pop("experiment", name)
    if named != name:
        raise UserError(f"{path} holds parameters of the '{named}' experiment, not '{name}'.")
    return values


def inferred_rule(value: Any) -> dict:
    """The rule a default implies when nothing else gives one: its JSON type (null: anything)."""
    for kind, json_type in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                            (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return {"type": json_type}
    return {}


def plugin_schema(name: str) -> dict:
    """A plugin's rules, key by key: its own schema.json's if it gives one, else the common rule of
    that key, else the type of its default. Each rule says which (``x-rule``)."""
    base = plugin_defaults(name)
    own_path = experiment_file(name, "schema.json")
    own = read_json(own_path).get("properties", {}) if own_path else {}
    common = _common_rules()
    rules = {}
    for key, value in base.items():
        if key in own:
            rules[key] = {**own[key], "x-rule": OWN}
        elif key in common:
            rules[key] = {**common[key], "x-rule": COMMON}
        else:
            rules[key] = {**inferred_rule(value), "x-rule": INFERRED}
    return {"type": "object", "description": plugin_description(name), "required": list(base),
            "additionalProperties": False, "properties": rules}


def plugin_description(name: str) -> str:
    """Its schema.json's "description", else one line saying where it comes from."""
    path = experiment_file(name, "schema.json")
    described = read_json(path).get("description") if path else None
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


# -- a project of one's own --------------------------------------------------------------------------
def init_project(name: str, folder: str | Path = ".", module: str | Path | None = None) -> list[Path]:
    """Copy ``name``'s params.json (and search.json) into ``folder/experiments/name/`` to edit; with
    ``module``, start an experiment of one's own instead (:func:`init_plugin`).

    Refuses to overwrite: the files may already hold someone's work."""
    if module is not None:
        return init_plugin(name, folder, module)
    check_name(name)
    if is_plugin(name):
        raise UserError(f"'{name}' is your own experiment: its files are yours to edit already "
                        f"({plugin_params_file(name)}).")
    target = Path(folder).expanduser() / "experiments" / name
    sources = [packaged_file(name, f) for f in ("params.json", "search.json") if packaged_file(name, f).is_file()]
    existing = [target / s.name for s in sources if (target / s.name).exists()]
    if existing:
        raise UserError(f"{existing[0]} exists already; edit it, or move it away to start over.")
    return [atomic.write_bytes(target / source.name, source.read_bytes()) for source in sources]


PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_]*")


def init_plugin(name: str, folder: str | Path, module: str | Path) -> list[Path]:
    """A new experiment of one's own that trains as it is: ``module`` (relative to ``folder``)
    holds a small MLP on scikit-learn's 8x8 digits registered as ``name``, and ``experiments/name/``
    beside it its params.json and search.json (found from any folder). Edit them into your own."""
    if not PLUGIN_NAME.fullmatch(name):
        raise UserError(f"'{name}': an experiment's name is lower-case letters, digits and _, starting with a letter.")
    if name in experiment_names():
        raise UserError(f"'{name}' is one of the package's experiments; give yours another name.")
    folder = Path(folder).expanduser()
    module_file = folder / Path(module).expanduser()
    if module_file.suffix != ".py":
        raise UserError(f"--module {module}: the module of a new experiment is a .py file.")
    target = module_file.parent / "experiments" / name  # where :func:`plugin_folder_file` looks
    files = {module_file: PLUGIN_TEMPLATE.substitute(name=name, Class=_class_name(name)),
             target / "params.json": json.dumps(PLUGIN_PARAMS, indent=2) + "\n",
             target / "search.json": json.dumps(PLUGIN_SEARCH, indent=2) + "\n"}
    existing = [path for path in files if path.exists()]
    if existing:
        raise UserError(f"{existing[0]} exists already; edit it, or move it away to start over.")
    return [atomic.write_text(path, text) for path, text in files.items()]


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part)


PLUGIN_PARAMS = {"seed": 1, "test_fraction": 0.25, "hidden": 32, "optimizer": "Adam", "optimizer_args": {},
                 "lr": 0.01, "batch_size": 64, "epochs": 30, "scheduler": None, "clip_grad_norm": None,
                 "precision": "fp32", "threads": None}
PLUGIN_SEARCH = {"lr": "loguniform:0.001:0.1", "hidden": "int:8:128"}
# What `torchclassics init NAME --module FILE` writes into FILE ($name and $Class filled in).
PLUGIN_TEMPLATE = string.Template('''\
"""$name: a small MLP classifies scikit-learn's 8x8 handwritten digits (an experiment of one's own).

torchclassics finds it through --module, $$TORCHCLASSICS_PLUGINS or an entry point in the
"torchclassics.experiments" group; its parameters are experiments/$name/params.json.
"""
from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from torchclassics.data.batches import TensorBatches
from torchclassics.engine.loop import Task, accuracy_sum
from torchclassics.registry import Experiment, experiment


def as_tensors(pixels, labels):
    return torch.tensor(pixels, dtype=torch.float32), torch.tensor(labels)


@experiment("$name")
class $Class(Experiment):
    """64 pixels -> ``hidden`` ReLU units -> 10 digits, trained with cross-entropy."""

    objective = ("test_accuracy", "max")  # what search optimises and best.pt follows

    def build(self, params, device):
        digits = load_digits()  # 1,797 images that ship with scikit-learn: nothing to download
        x_train, x_test, y_train, y_test = train_test_split(
            digits.data / 16, digits.target, test_size=params["test_fraction"], random_state=params["seed"],
            stratify=digits.target)
        model = nn.Sequential(nn.Linear(64, params["hidden"]), nn.ReLU(), nn.Linear(params["hidden"], 10))
        return Task(
            model=model,
            train=TensorBatches(*as_tensors(x_train, y_train), batch_size=params["batch_size"],
                                seed=params["seed"], device=device),
            test=TensorBatches(*as_tensors(x_test, y_test), batch_size=len(x_test), shuffle=False, device=device),
            loss_fn=nn.CrossEntropyLoss(),
            metrics={"accuracy": accuracy_sum},
            monitor="test_accuracy",
            mode="max",
        )
''')

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
import sys
from pathlib import Path
from typing import Any, Iterable

from . import atomic
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
    """The user's copy of an experiment's file, else the package's, else None."""
    path = user_file(name, filename)
    if path is not None:
        return path
    path = packaged_file(name, filename)
    return path if path.is_file() else None


def check_name(name: str) -> None:
    """A UserError with a did-you-mean for a name the package does not ship."""
    known = experiment_names()
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UserError(f"unknown experiment '{name}'.{hint} Known: {', '.join(known)} (see `torchclassics list`).")


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
    return read_json(packaged_file(name))


@functools.lru_cache(maxsize=None)
def schema(name: str) -> dict:
    """The JSON Schema of ``name``'s params: common rules, the experiment's own over them,
    for exactly the keys of its packaged params.json."""
    common = read_json(DEFAULTS / "common.schema.json")["properties"]
    own = read_json(packaged_file(name, "schema.json"))
    rules = {**common, **own.get("properties", {})}
    keys = list(packaged_defaults(name))
    missing = [key for key in keys if key not in rules]
    if missing:  # a packaging bug, caught by the test suite
        raise RuntimeError(f"defaults/{name}: no rule for {', '.join(missing)} in schema.json")
    return {"type": "object", "description": own.get("description", ""), "required": keys,
            "additionalProperties": False, "properties": {key: rules[key] for key in keys}}


def description(name: str) -> str:
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
        self.params = json.loads(json.dumps(packaged_defaults(name)))  # a deep copy of plain JSON
        self.sources = {key: PACKAGED for key in self.params}
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
            default = packaged_defaults(self.name).get(path[0])
            raise self.error(path[0], f"{_shown(key, error.instance)}: {_why(error)} (default "
                                      f"{_shown(path[0], default).split('=', 1)[1]})")
        return self.normalised()

    def error(self, key: str, message: str) -> UserError:
        source = self.sources.get(key, PACKAGED)
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
    else:
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


# -- a project of one's own ------------------------------------------------------------------------
def init_project(name: str, folder: str | Path = ".") -> list[Path]:
    """Copy ``name``'s params.json (and search.json) into ``folder/experiments/name/`` to edit.

    Refuses to overwrite: the files may already hold someone's work."""
    check_name(name)
    target = Path(folder).expanduser() / "experiments" / name
    sources = [packaged_file(name, f) for f in ("params.json", "search.json") if packaged_file(name, f).is_file()]
    existing = [target / s.name for s in sources if (target / s.name).exists()]
    if existing:
        raise UserError(f"{existing[0]} exists already; edit it, or move it away to start over.")
    return [atomic.write_bytes(target / source.name, source.read_bytes()) for source in sources]

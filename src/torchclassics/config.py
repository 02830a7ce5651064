"""Experiment parameters: ``experiments/<name>/params.json`` plus ``--set`` overrides.

Every default of an experiment lives in its params.json; an override must name a
key that exists there and have a value of the same type. Mistakes end in a
:class:`UserError` that names the key, the value and what is allowed.
"""
from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

from .errors import UserError

# Keys that must be strictly positive wherever they appear.
_POSITIVE = ("lr", "batch_size", "epochs", "steps", "hidden", "image_size", "n_points", "n_per_class",
             "time_steps", "train_windows", "test_windows")
# Keys whose default is null, and what else they may hold.
_NULLABLE = {"scheduler": (dict,), "clip_grad_norm": (int, float), "data_root": (str,)}


def experiments_dirs() -> list[Path]:
    """Where params.json files are looked for, first match wins.

    ``$TORCHCLASSICS_EXPERIMENTS``, then ``./experiments`` (a course project of
    the user's own), then the ``experiments/`` folder of this source checkout.
    """
    dirs = []
    if os.environ.get("TORCHCLASSICS_EXPERIMENTS"):
        dirs.append(Path(os.environ["TORCHCLASSICS_EXPERIMENTS"]))
    dirs.append(Path.cwd() / "experiments")
    dirs.append(Path(__file__).resolve().parents[2] / "experiments")
    return dirs


def params_path(name: str) -> Path:
    for folder in experiments_dirs():
        path = folder / name / "params.json"
        if path.is_file():
            return path
    searched = ", ".join(str(d) for d in experiments_dirs())
    raise UserError(f"no params.json for experiment '{name}' (looked in {searched}).")


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


def load_defaults(name: str) -> dict:
    return read_json(params_path(name))


def parse_override(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise UserError(f"--set '{text}': expected key=value, e.g. --set lr=0.01.")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise UserError(f"--set '{text}': the key before '=' is empty.")
    return key, value.strip()


def _parse_value(raw: Any) -> Any:
    """CLI strings become JSON values where they parse (3 -> int, [1,2] -> list)."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        lowered = raw.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "null"):
            return None
        return raw


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _coerce(key: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default``, or a UserError."""
    if default is None:
        allowed = _NULLABLE.get(key.split(".")[-1])
        if value is None or allowed is None or (isinstance(value, allowed) and not isinstance(value, bool)):
            return value
        names = " or ".join(_type_name(t()) for t in allowed)
        raise UserError(f"{key}={json.dumps(value)}: expected {names} or null.")
    if value is None:
        if key in _NULLABLE:
            return None
        raise UserError(f"{key}=null: expected {_type_name(default)} (default {json.dumps(default)}).")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        return value if isinstance(value, str) else json.dumps(value)
    elif isinstance(default, list):
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [_parse_value(v.strip()) for v in value.split(",") if v.strip()]
    elif isinstance(default, dict):
        if isinstance(value, dict):
            return value
    raise UserError(f"{key}={json.dumps(value)}: expected {_type_name(default)} (default {json.dumps(default)}).")


def _unknown_key(key: str, known) -> UserError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UserError(f"unknown parameter '{key}'.{hint} Known: {', '.join(sorted(known))}.")


def apply_overrides(defaults: dict, overrides: dict[str, Any]) -> dict:
    """A new dict: ``defaults`` with ``overrides`` applied; dotted keys reach into objects
    (``optimizer_args.momentum=0.9``)."""
    params = json.loads(json.dumps(defaults))  # deep copy; params are plain JSON
    for key, raw in overrides.items():
        *path, leaf = key.split(".")
        if not path and key not in params:
            raise _unknown_key(key, params)
        target = params
        for depth, part in enumerate(path):
            if depth == 0 and part not in target:
                raise _unknown_key(part, target)
            target = target.setdefault(part, {})  # objects below the top level are kwargs: new keys allowed
            if not isinstance(target, dict):
                raise UserError(f"{key}: '{part}' is {_type_name(target)}, not an object.")
        value = _parse_value(raw)
        target[leaf] = _coerce(key, value, target.get(leaf)) if leaf in target else value
    return params


def optimizer_names() -> list[str]:
    import torch.optim

    return sorted(
        name
        for name, obj in vars(torch.optim).items()
        if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer
    )


# Names the lessons use for a torch.optim class with particular arguments.
OPTIMIZER_ALIASES = {"Momentum": "SGD"}


def check_optimizer(key: str, name: str, aliases: bool = False) -> None:
    known = optimizer_names() + (sorted(OPTIMIZER_ALIASES) if aliases else [])
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UserError(f"{key}='{name}': not a torch.optim optimizer.{hint} Allowed: {', '.join(known)}.")


def validate(params: dict) -> None:
    """Checks that hold for every experiment: positive sizes and rates, known optimizer."""
    for key, value in params.items():
        if key in _POSITIVE or key.endswith(("_lr", "_size", "_epochs")):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                raise UserError(f"{key}={value}: must be > 0.")
    if "seed" in params and not isinstance(params["seed"], int):
        raise UserError(f"seed={params['seed']!r}: must be an integer.")
    if isinstance(params.get("optimizer"), str):
        check_optimizer("optimizer", params["optimizer"])
    for name in params.get("optimizers", []) or []:
        check_optimizer("optimizers", str(name), aliases=True)
    if "optimizers" in params and not params["optimizers"]:
        raise UserError("optimizers=[]: name at least one, e.g. --set optimizers=SGD,Adam.")


def resolve(name: str, overrides: dict[str, Any] | None = None) -> dict:
    """The parameters one run uses: defaults of ``name`` plus validated overrides."""
    params = apply_overrides(load_defaults(name), overrides or {})
    validate(params)
    if isinstance(params.get("data_root"), str) and params["data_root"]:
        # absolute, so evaluate and predict find the data from any working directory
        params["data_root"] = str(Path(params["data_root"]).expanduser().resolve())
    return params

"""The rules parameters must follow, and the one-line messages when they do not.

An experiment's rules are JSON Schema: ``defaults/<name>/schema.json`` laid over
``defaults/common.schema.json``, which declares every key's type and range next to the
experiment's parameters. Three keywords of our own extend it:

* ``"x-names"``: the value names a torch class: ``"optimizer"``, ``"optimizer-or-alias"`` or
  ``"scheduler"`` (the names come from torch's namespaces: :mod:`.torch_names`);
* ``"x-rules"``, at the top of an experiment's schema.json: rules between parameters, one
  comparison each, e.g. ``{"require": "learn_start <= memory", "because": "..."}``, optionally
  ``"when": "drop_last"`` (see :func:`parse_rule` for what a rule may say);
* ``"x-rule"`` on an experiment of one's own's properties: where that key's rule came from.

Beyond the schema, every number must be finite, and a value of an integer-valued parameter must
be an exact integer (``2.0`` is 2; ``1e20``, a float past 2**53, is no exact integer).

Pure functions of the data they are given: the files are found by :mod:`.sources`. Imports no
torch (jsonschema only when checking).
"""
from __future__ import annotations

import ast
import functools
import json
import math
import operator
from dataclasses import dataclass
from typing import Any, Protocol

from ..core import jsonfile
from ..core.errors import UserError
from . import torch_names
from .packaged import COMMON_SCHEMA

SCHEMA_MAX_BYTES = 1_000_000
EXACT_INTEGERS = 2 ** 53  # floats beyond this are not every integer: 1e20 + 1 == 1e20
# Where each rule of an experiment of one's own comes from (the "x-rule" of its properties).
OWN, COMMON, INFERRED = "its schema.json", "the common rules", "its default's type"


# -- building a schema --------------------------------------------------------------------------------
@functools.cache
def common_rules() -> dict:
    return jsonfile.read_object(COMMON_SCHEMA, SCHEMA_MAX_BYTES)["properties"]


def packaged_schema(name: str, keys: list[str], own: dict) -> dict:
    """The schema of a packaged experiment whose params.json has ``keys``: the common rules, its own
    schema.json (``own``) over them, for exactly those keys."""
    rules = {**common_rules(), **own.get("properties", {})}
    missing = [key for key in keys if key not in rules]
    if missing:  # a packaging bug, caught by the test suite
        raise RuntimeError(f"defaults/{name}: no rule for {', '.join(missing)} in schema.json")
    return _schema(own.get("description", ""), {key: rules[key] for key in keys},
                   cross_rules(own, f"defaults/{name}/schema.json", keys))


def plugin_schema(base: dict, own: dict, own_source: str, description: str) -> dict:
    """An experiment of one's own's rules, key by key: its own schema.json's (``own``) if it gives
    one, else the common rule of that key, else the type of its default. Each says which (``x-rule``)."""
    own_rules, common = own.get("properties", {}), common_rules()
    rules = {}
    for key, value in base.items():
        if key in own_rules:
            rules[key] = {**own_rules[key], "x-rule": OWN}
        elif key in common:
            rules[key] = {**common[key], "x-rule": COMMON}
        else:
            rules[key] = {**inferred_rule(value), "x-rule": INFERRED}
    return _schema(description, rules, cross_rules(own, own_source, list(base)))


def _schema(description: str, properties: dict, rules: list[CrossRule]) -> dict:
    return {"type": "object", "description": description, "required": list(properties),
            "additionalProperties": False, "properties": properties, "x-rules": rules}


def inferred_rule(value: Any) -> dict:
    """The rule a default implies when nothing else gives one: its JSON type (null: anything)."""
    for kind, json_type in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                            (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return {"type": json_type}
    return {}


def types_of(rule: dict) -> set[str]:
    """The JSON types a rule allows (through anyOf and enum too)."""
    found = set()
    kinds = rule.get("type")
    if kinds:
        found.update([kinds] if isinstance(kinds, str) else kinds)
    for option in rule.get("anyOf", []):
        found |= types_of(option)
    for value in rule.get("enum", []):
        found.add({str: "string", bool: "boolean", int: "integer", float: "number"}.get(type(value), "null"))
    return found


def integer_valued(rule: dict) -> bool:
    """An integer, or null: a size, a count, a seed."""
    types = types_of(rule)
    return "integer" in types and types <= {"integer", "null"}


# -- rules between parameters ("x-rules") -----------------------------------------------------------------
_COMPARE = {ast.Lt: ("<", operator.lt), ast.LtE: ("<=", operator.le), ast.Gt: (">", operator.gt),
            ast.GtE: (">=", operator.ge), ast.Eq: ("==", operator.eq), ast.NotEq: ("!=", operator.ne)}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


@dataclass(frozen=True)
class CrossRule:
    """``require`` must hold whenever ``when`` does (both in :func:`parse_rule`'s small language);
    ``because``: why, for the message."""

    require: str
    because: str
    when: str | None = None

    @property
    def keys(self) -> list[str]:
        """The top-level parameters the rule reads, in order of appearance."""
        found = [_top(path) for text in (self.require, self.when) if text for path in _paths(parse_rule(text))]
        return list(dict.fromkeys(found))

    def holds(self, params: dict) -> bool:
        """Whether the rule holds; a rule reading a null value does not apply (batch_size null: all)."""
        try:
            if self.when is not None and not _value(parse_rule(self.when), params):
                return True
            return bool(_value(parse_rule(self.require), params))
        except _NotApplicable:
            return True

    def __str__(self) -> str:
        return self.require + (f" when {self.when}" if self.when else "")


class _NotApplicable(Exception):
    pass


@functools.cache
def parse_rule(text: str) -> ast.expr:
    """A rule: a comparison (``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``, chains too) of terms, or a
    lone term for ``when``. A term: a parameter (``memory``), an item of one (``x_range[0]``), a key
    inside one (``scheduler.T_max``), a number, or ``+ - * /`` of terms. Nothing else: a rule is data,
    never code to run. A ValueError says what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as err:
        raise ValueError(f"{text!r} is not a rule ({err.msg})") from None
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Compare, ast.BinOp, ast.UnaryOp, ast.Name, ast.Attribute, ast.Subscript,
                                 ast.Constant, ast.Load, ast.USub, ast.UAdd, *_COMPARE, *_ARITHMETIC)):
            raise ValueError(f"{text!r}: {type(node).__name__} is not allowed in a rule")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise ValueError(f"{text!r}: only numbers may be written in a rule")
        if isinstance(node, ast.Subscript) and not (isinstance(node.slice, ast.Constant)
                                                    and isinstance(node.slice.value, int)):
            raise ValueError(f"{text!r}: an item is chosen by a whole number, e.g. x_range[0]")
    if not _paths(tree):
        raise ValueError(f"{text!r} names no parameter")
    return tree


def _paths(node: ast.expr) -> list[str]:
    """The parameter paths a rule reads (``x_range[0]``, ``memory``)."""
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
        return [ast.unparse(node)]
    return [path for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr) for path in _paths(child)]


def _top(path: str) -> str:
    return path.split(".")[0].split("[")[0]


def _value(node: ast.expr, params: dict) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in params:
            raise KeyError(node.id)
        return _known(params[node.id])
    if isinstance(node, ast.Attribute):
        inside = _value(node.value, params)
        if not isinstance(inside, dict):
            raise _NotApplicable
        return _known(inside.get(node.attr))
    if isinstance(node, ast.Subscript):
        inside, index = _value(node.value, params), node.slice.value
        if not isinstance(inside, list) or not -len(inside) <= index < len(inside):
            raise _NotApplicable
        return _known(inside[index])
    if isinstance(node, ast.UnaryOp):
        value = _value(node.operand, params)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _ARITHMETIC[type(node.op)](_value(node.left, params), _value(node.right, params))
    left = _value(node.left, params)
    for op, right_node in zip(node.ops, node.comparators):
        right = _value(right_node, params)
        if not _COMPARE[type(op)][1](left, right):
            return False
        left = right
    return True


def _known(value: Any) -> Any:
    if value is None:
        raise _NotApplicable
    return value


def cross_rules(schema: dict, source: str, keys: list[str]) -> list[CrossRule]:
    """The ``"x-rules"`` of a schema file, checked: each a known form, naming only parameters in ``keys``."""
    found = schema.get("x-rules", [])
    if not isinstance(found, list):
        raise UserError(f"{source}: \"x-rules\" is a list of {{\"require\": ..., \"because\": ...}}.")
    rules = []
    for entry in found:
        if not (isinstance(entry, dict) and isinstance(entry.get("require"), str)
                and isinstance(entry.get("because", ""), str) and isinstance(entry.get("when", ""), str)
                and set(entry) <= {"require", "because", "when", "$comment"}):
            raise UserError(f"{source}: x-rules: {json.dumps(entry)} is not {{\"require\": RULE, \"because\": WHY"
                            "[, \"when\": CONDITION]}.")
        rule = CrossRule(entry["require"], entry.get("because", ""), entry.get("when"))
        try:
            unknown = [key for key in rule.keys if key not in keys]
        except ValueError as err:
            raise UserError(f"{source}: x-rules: {err}.") from None
        if unknown:
            raise UserError(f"{source}: x-rules: {str(rule)!r} names {', '.join(unknown)}, not a parameter here.")
        rules.append(rule)
    return rules


# -- checking -------------------------------------------------------------------------------------------------
class Checked(Protocol):
    """What :func:`check` needs of the parameters being built (:class:`.sources.Layers`)."""

    name: str
    params: dict
    defaults: dict

    def error(self, key: str, message: str) -> UserError: ...

    def last_set(self, keys: list[str]) -> str: ...


def check(layers: Checked, schema: dict) -> None:
    """Raise one UserError for the first rule ``layers.params`` breaks, naming where the value came from."""
    params, properties = layers.params, schema["properties"]
    for key, value in params.items():
        if _nests_deeper(value, jsonfile.MAX_DEPTH):
            raise layers.error(key, f"{key}: nests deeper than {jsonfile.MAX_DEPTH} levels")
        bad = _non_finite(value, key)
        if bad:
            raise layers.error(key, f"{shown(*bad)}: not a finite number")
    errors = sorted(_validator(schema).iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        raise _schema_error(layers, properties, errors[0])
    for key, rule in properties.items():
        value = params.get(key)
        if integer_valued(rule) and isinstance(value, float) and abs(value) >= EXACT_INTEGERS:
            raise layers.error(key, f"{shown(key, value)}: expected an integer, and a float this large is not an "
                                    "exact one; write it without a decimal point or exponent")
    for rule in schema.get("x-rules", []):
        try:
            holds = rule.holds(params)
        except (ArithmeticError, TypeError):  # a rule over values of the wrong kind: the schema said so first
            continue
        if not holds:
            raise _broken(layers, rule)


def _schema_error(layers: Checked, properties: dict, error) -> UserError:
    path = list(error.absolute_path)
    if not path:  # a top-level problem: an unknown or missing key
        return UserError(f"{layers.name} parameters: {error.message}.")
    key = path[0] + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
    # A wrong key inside an object (optimizer_args.Nadam) is named alone; a wrong value with its key.
    what = f"{key}.{error.instance}" if "propertyNames" in error.schema_path else shown(key, error.instance)
    default = json.dumps(layers.defaults.get(path[0]), default=str)
    inferred = (f"; the rule is its default's type: write experiments/{layers.name}/schema.json for your own"
                if properties.get(path[0], {}).get("x-rule") == INFERRED else "")
    return layers.error(path[0], f"{what}: {why(error)} (default {default}{inferred})")


def _broken(layers: Checked, rule: CrossRule) -> UserError:
    keys = rule.keys
    blamed = layers.last_set(keys)
    others = ", ".join(shown(key, layers.params[key]) for key in keys if key != blamed)
    because = f": {rule.because}" if rule.because else ""
    return layers.error(blamed, f"{shown(blamed, layers.params[blamed])}: needs {rule}"
                                f"{f' ({others})' if others else ''}{because}")


def _validator(schema: dict):
    from jsonschema import Draft202012Validator, ValidationError, validators

    def names(validator, kind, instance, _schema):
        allowed = torch_names.names_of(kind)
        if isinstance(instance, str) and allowed is not None and instance not in allowed:
            close = torch_names.closest(instance, allowed)
            hint = f"did you mean '{close}'? " if close else ""
            what = "torch.optim.lr_scheduler class" if kind == "scheduler" else "torch.optim optimizer"
            yield ValidationError(f"not a {what}; {hint}allowed: {', '.join(allowed)}")

    plain = {key: value for key, value in schema.items() if key != "x-rules"}  # ours, not JSON Schema's
    return validators.extend(Draft202012Validator, {"x-names": names})(plain)


# -- the messages -------------------------------------------------------------------------------------------
_COMPARISONS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
_TYPE_NAMES = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "array": "a list", "object": "an object", "null": "null"}


def why(error) -> str:
    """What a jsonschema error means, in the words of this project."""
    if error.validator == "anyOf":  # null or something: explain the something
        options = [e for e in error.context if not (e.validator == "type" and e.validator_value == "null")]
        if options:
            from jsonschema.exceptions import best_match

            reason = why(best_match(options))
            allows_null = any(e.validator == "type" and e.validator_value == "null" for e in error.context)
            return f"{reason}{' (or null)' if allows_null else ''}"
    if error.validator in _COMPARISONS:
        return f"must be {_COMPARISONS[error.validator]} {_number(error.validator_value)}"
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return "expected " + " or ".join(_TYPE_NAMES.get(t, t) for t in wanted)
    if error.validator == "enum":
        return "choose one of " + ", ".join(json.dumps(v) for v in error.validator_value)
    if error.validator in ("minItems", "maxItems"):
        count = error.validator_value
        bound = "at least" if error.validator == "minItems" else "at most"
        return f"needs {bound} {count} item{'s' if count != 1 else ''}"
    if error.validator == "uniqueItems":
        return "names an item twice"
    if error.validator == "minLength":
        return "must not be empty"
    if error.validator == "required":
        return f"needs {', '.join(repr(k) for k in error.validator_value if k not in error.instance)}"
    return error.message


def _number(value) -> str:
    """A bound as a reader writes it: 1000000, not 1e6; 0.5 as 0.5."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() and abs(value) < 1e16 else str(value)


def shown(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value, default=str)}"


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether lists and objects inside ``value`` nest deeper than ``limit`` (walked without recursion:
    a keyword argument may nest deeper than Python's own limit)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth + 1 > limit:
                return True
            stack.extend((inner, depth + 1) for inner in (item.values() if isinstance(item, dict) else item))
    return False


def _non_finite(value: Any, key: str) -> tuple[str, Any] | None:
    """The first NaN, infinity, or integer too large for a float inside ``value``: (dotted key, number)."""
    if isinstance(value, float) and not math.isfinite(value):
        return key, value
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1024:
        return key, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for sub, item in items:
        found = _non_finite(item, f"{key}.{sub}" if isinstance(value, dict) else f"{key}[{sub}]")
        if found:
            return found
    return None

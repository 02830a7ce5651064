"""``torchclassics params NAME --describe``: each parameter with its value, default, type, bounds and
description, read from the experiment's schema (the same rules that check it). Imports no torch."""
from __future__ import annotations

import json
from typing import Any

from . import sources

BOUNDS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))


def _shown(value: Any) -> str:
    return json.dumps(value)


def kind(rule: dict) -> str:
    """``integer >= 1, <= 1000000``, ``null | number > 0``, ``one of fp32, bf16, fp16``: what a value may be."""
    if "anyOf" in rule:
        return " | ".join(kind(choice) for choice in rule["anyOf"])
    if "enum" in rule:
        return "one of " + ", ".join(_shown(value) for value in rule["enum"])
    if rule.get("x-names"):
        return f"the name of a torch {'scheduler' if rule['x-names'] == 'scheduler' else 'optimizer'}"
    text = rule.get("type", "any")
    text = " or ".join(text) if isinstance(text, list) else text
    bounds = [f"{sign} {_shown(rule[key])}" for key, sign in BOUNDS if isinstance(rule.get(key), (int, float))]
    return f"{text} {', '.join(bounds)}" if bounds else text


def describe(name: str, values: dict) -> list[str]:
    """Lines for every parameter of ``name`` (``values``: the resolved ones): ``key = value  (default d;
    type and bounds)`` and its description below."""
    schema = sources.schema(name)
    defaults = sources.defaults(name)
    lines = [f"{name}: {schema.get('description') or sources.description(name)}"]
    for key, rule in schema["properties"].items():
        value = values.get(key, defaults.get(key))
        lines.append(f"  {key} = {_shown(value)}  (default {_shown(defaults.get(key))}; {kind(rule)})")
        if rule.get("description"):
            lines.append(f"      {rule['description']}")
    return lines


__all__ = ["describe", "kind"]

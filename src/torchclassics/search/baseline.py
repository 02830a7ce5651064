"""The defaults as the baseline: trial 0 of every new study runs the experiment's resolved parameters
(what ``torchclassics run NAME`` with the same ``--set`` would train), each one brought into the search
space, so that the end of a search can say whether any trial beat them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .space import Dimension

BASELINE_ATTR = "baseline"      # user attribute of the trial that runs the defaults (true)
RERUN_ATTR = "rerun_of"         # user attribute of a trial queued again after its run was interrupted
INTERRUPTED_ATTR = "interrupted"  # user attribute of a trial stopped by Ctrl-C or SIGTERM (state PRUNED)


@dataclass(frozen=True)
class Baseline:
    """The defaults as a trial's parameters; ``changes``: one phrase per default moved into the space."""

    params: dict
    changes: tuple = field(default=())

    def announcement(self, number: int = 0) -> str:
        from .trials import shown_params

        moved = f" (clipped: {'; '.join(self.changes)})" if self.changes else ""
        return f"trial {number} is the defaults: {shown_params(self.params).replace(' ', ', ')}{moved}"


def default_of(params: dict, key: str):
    """The resolved value of ``key`` (dotted keys reach into objects), or None when it has none."""
    value = params
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _in_choices(dim: Dimension, value):
    """The choice equal to ``value`` (1 and True are not equal here), or None."""
    for choice in dim.choices:
        if type(choice) is type(value) and choice == value:
            return choice
        if _is_number(choice) and _is_number(value) and choice == value:
            return choice
    return None


def _nearest_choice(dim: Dimension, value):
    numbers = [c for c in dim.choices if _is_number(c)]
    if _is_number(value) and numbers:
        return min(numbers, key=lambda c: abs(c - value))  # ties: the first listed
    return dim.choices[0]


def _on_step(dim: Dimension, value: float) -> int:
    """An integer of the range: rounded (in log scale for logint), on the range's steps, inside it."""
    if dim.kind == "logint" and value > 0:
        low, high = math.floor(value), math.ceil(value)
        value = low if low > 0 and math.log(value / low) <= math.log(high / value) else high
    step = dim.step or 1
    top = dim.low + (dim.high - dim.low) // step * step  # Optuna's own top of a stepped range
    return int(min(max(dim.low + round((value - dim.low) / step) * step, dim.low), top))


def into_space(dim: Dimension, value):
    """(the value the baseline trial runs, a phrase saying how it was moved, or None when it was not).
    None as the value: no default fits (a range and a null default); the sampler picks it then."""
    from .trials import shown_value

    spec = f"{dim.key}={dim.spec()}"
    if dim.kind == "choice":
        kept = _in_choices(dim, value)
        if kept is not None or (value is None and None in dim.choices):
            return kept, None
        chosen = _nearest_choice(dim, value)
        return chosen, f"{dim.key} {shown_value(value)} is not among {spec}: {shown_value(chosen)}"
    if not _is_number(value):
        return None, f"{dim.key} {shown_value(value)} is not a number of {spec}: the sampler picks it"
    if dim.kind in ("int", "logint"):
        moved = _on_step(dim, value)
    else:
        moved = float(min(max(value, dim.low), dim.high))
    if moved == value:
        return moved, None
    return moved, f"{dim.key} {shown_value(value)} -> {shown_value(moved)}, {spec}"


def baseline(params: dict, space: list[Dimension]) -> Baseline:
    """The defaults of ``space``'s keys in ``params`` (the resolved parameters), moved into the space."""
    chosen, changes = {}, []
    for dim in space:
        value, change = into_space(dim, default_of(params, dim.key))
        if value is not None or (dim.kind == "choice" and change is None):
            chosen[dim.key] = value
        if change:
            changes.append(change)
    return Baseline(chosen, tuple(changes))

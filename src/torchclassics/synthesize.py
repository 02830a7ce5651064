"""Moved: the tables are :mod:`torchclassics.results.synthesize`. This module keeps the one name that
search.py imports today, until it takes the direction from :mod:`torchclassics.rundir.metrics` itself."""
from __future__ import annotations

from .rundir.metrics import guessed_mode


def higher_is_better(metric: str) -> bool:
    return guessed_mode(metric) == "max"

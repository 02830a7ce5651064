"""The package's own experiments: each is a folder of data files in ``defaults/`` (params.json,
schema.json, search.json), shipped inside the wheel so that a run works from any folder.

A leaf: it knows only where those files are, so both the parameter sources and the discovery of
experiments of one's own (which must not take a packaged name) can ask it.
"""
from __future__ import annotations

from pathlib import Path

DEFAULTS = Path(__file__).resolve().parent.parent / "defaults"
COMMON_SCHEMA = DEFAULTS / "common.schema.json"


def experiment_names() -> list[str]:
    """Every experiment the package ships, by its folder in defaults/."""
    return sorted(p.parent.name for p in DEFAULTS.glob("*/params.json"))


def packaged_file(name: str, filename: str = "params.json") -> Path:
    return DEFAULTS / name / filename

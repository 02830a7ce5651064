"""The optional extras: which are installed, what each enables, and how to install one.

Found without importing anything (``importlib.util.find_spec``), so ``torchclassics --version`` and a
missing-extra message answer at once. Every message about a missing extra gives both commands: one
for a released install and one for a clone of the repository (``pip install ".[export]"``).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Extra:
    name: str
    modules: tuple[str, ...]  # importable names that must all be there
    enables: str


EXTRAS = (
    Extra("export", ("onnx", "onnxscript", "onnxruntime"), "export --format onnx, checked in ONNX Runtime"),
    Extra("executorch", ("executorch",), "export --format executorch: a .pte program for Android and iOS apps"),
    Extra("tensorboard", ("tensorboard",), "TensorBoard curves in each run's tensorboard/ (run --no-tensorboard: off)"),
    Extra("postgres", ("psycopg2",), "search --storage postgresql://... (a study shared by many machines)"),
    Extra("botorch", ("optuna_integration", "botorch"), "search --sampler botorch"),
)


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def installed(name: str) -> bool:
    extra = next(extra for extra in EXTRAS if extra.name == name)
    return all(_findable(module) for module in extra.modules)


def install_hint(name: str) -> str:
    """The command for a released install and the one for a clone of the repository."""
    return f'pip install "torchclassics[{name}]" (from PyPI) or pip install ".[{name}]" (in a clone)'


def report() -> list[str]:
    """One line per extra: installed or not, what it enables, and how to get it when missing."""
    lines = []
    for extra in EXTRAS:
        if installed(extra.name):
            lines.append(f"  {extra.name:<12} installed  {extra.enables}")
        else:
            lines.append(f"  {extra.name:<12} missing    {extra.enables}; {install_hint(extra.name)}")
    return lines

"""The names of torch's optimizers and learning-rate schedulers, for checking params.json
without importing torch.

The names come from torch's public namespaces: the classes of ``torch.optim`` that subclass
``Optimizer``, and those of ``torch.optim.lr_scheduler`` that subclass ``LRScheduler`` (or
``ReduceLROnPlateau``), less the base classes and the schedulers whose arguments are Python
objects that params.json cannot hold (``lr_lambda`` functions, other schedulers).

Importing torch takes seconds, and listing, parameters and every parameter error must answer at
once without it. So the names are computed once per torch installation, by a child process
that imports torch (or directly, in a process that has imported it already), and kept in the
user's cache folder (``$XDG_CACHE_HOME/torchclassics/torch-names/``, else
``~/.cache/torchclassics/torch-names/``) under a key made of torch's version, its install
location and the modification time of its ``version.py`` (a reinstall over the same folder).

When torch cannot be imported here, the names are unknown (None): the parameter check lets any
name through and says so once in a note; the run's own build of the optimizer, which needs
torch anyway, is then the check. A failure is not cached: the next process tries again.
"""
from __future__ import annotations

import difflib
import functools
import hashlib
import importlib.util
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

from ..core import files, jsonfile, messages
from ..core.errors import UserError

# Lesson names for a torch.optim class with particular arguments (the optimizers experiment only).
OPTIMIZER_ALIASES = {"Momentum": "SGD"}
# Arguments that hold Python objects (a function, other schedulers): a scheduler needing them cannot
# be written in params.json. Annotations name them too, where torch gives annotations.
OBJECT_ARGUMENTS = {"lr_lambda", "schedulers"}
OBJECT_ANNOTATIONS = ("Callable", "LRScheduler")
CACHE_FORMAT = 2  # raise it whenever the choice of names above changes: old cache files are then ignored
CHILD_TIMEOUT_S = 300  # importing torch on a busy machine
CHILD = """\
import json, sys
sys.path[:] = json.loads(sys.argv[1])
import torch
from torchclassics.params.torch_names import from_namespaces
print(json.dumps({"file": torch.__file__, "version": torch.__version__, **from_namespaces(torch)}))
"""


# -- from torch itself -------------------------------------------------------------------------------
def from_namespaces(torch) -> dict[str, list[str]]:
    """``{"optimizers": [...], "schedulers": [...]}`` read from an imported torch."""
    optim, schedulers = torch.optim, torch.optim.lr_scheduler
    abstract = [getattr(schedulers, name, None) for name in ("LRScheduler", "_LRScheduler")]
    bases = tuple(cls for cls in (*abstract, getattr(schedulers, "ReduceLROnPlateau", None)) if cls is not None)
    return {"optimizers": _classes(optim, (optim.Optimizer,), {optim.Optimizer}),
            "schedulers": _classes(schedulers, bases, {cls for cls in abstract if cls is not None})}


def _classes(namespace, bases: tuple[type, ...], abstract: set[type]) -> list[str]:
    """Public classes of ``namespace`` subclassing ``bases`` (the ``abstract`` ones excluded) whose
    arguments params.json can hold."""
    found = []
    for name in dir(namespace):
        cls = getattr(namespace, name, None)
        if name.startswith("_") or not inspect.isclass(cls) or cls in abstract or not issubclass(cls, bases):
            continue
        if not _needs_objects(cls):
            found.append(name)
    return sorted(found)


def _needs_objects(cls: type) -> bool:
    """Whether ``cls`` needs an argument params.json cannot hold: one named like LambdaLR's and
    SequentialLR's, or a required one annotated as a function or a scheduler."""
    try:
        arguments = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # no signature to read: keep the name, building it will tell
        return False
    for argument in arguments:
        annotation = argument.annotation if isinstance(argument.annotation, str) else repr(argument.annotation)
        required = argument.default is inspect.Parameter.empty and argument.name not in ("optimizer", "params")
        if argument.name in OBJECT_ARGUMENTS or (required and any(word in annotation for word in OBJECT_ANNOTATIONS)):
            return True
    return False


# -- which torch, and the cache --------------------------------------------------------------------------
def installed_torch() -> dict | None:
    """Where torch is installed and which version, found without importing it; None if absent."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    origin = Path(spec.origin)
    version_file = origin.parent / "version.py"
    try:
        stamp = (version_file if version_file.is_file() else origin).stat().st_mtime_ns
    except OSError:
        return None
    dist_info = sorted(origin.parent.parent.glob("torch-*.dist-info"))  # its name carries the version
    version = dist_info[-1].name[len("torch-"):-len(".dist-info")] if dist_info else ""
    return {"file": str(origin), "version": version, "stamp": stamp}


def cache_folder() -> Path | None:
    try:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home folder
        return None
    return root / "torchclassics" / "torch-names"


def _cache_file(torch: dict) -> Path | None:
    folder = cache_folder()
    if folder is None:
        return None
    key = hashlib.sha256(f"{torch['file']}\n{torch['version']}\n{torch['stamp']}".encode()).hexdigest()[:20]
    return folder / f"{key}.json"


def _read_cache(path: Path, torch: dict) -> dict | None:
    try:
        data = jsonfile.read_object(path, 1 << 20)
    except UserError:  # absent, damaged, not a file: compute again
        return None
    if data.get("format") != CACHE_FORMAT or data.get("torch") != torch or not _well_formed(data):
        return None
    return {"optimizers": data["optimizers"], "schedulers": data["schedulers"]}


def _well_formed(names: dict) -> bool:
    return all(isinstance(names.get(kind), list) and all(isinstance(n, str) for n in names[kind])
               for kind in ("optimizers", "schedulers"))


def _write_cache(path: Path, torch: dict, names: dict) -> None:
    try:
        files.write_json(path, {"format": CACHE_FORMAT, "torch": torch, **names})
    except OSError:  # a read-only home: the names serve this process only
        pass


def _from_child(torch: dict) -> dict | None:
    """The names, from a child process that imports the torch this process would import."""
    search_path = [*sys.path, str(Path(__file__).resolve().parents[2])]  # and this torchclassics
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(search_path)], capture_output=True,
                              text=True, timeout=CHILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
        found = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        found = None
    if not isinstance(found, dict) or not _well_formed(found) or not _same_file(found.get("file"), torch["file"]):
        return None
    return {"optimizers": found["optimizers"], "schedulers": found["schedulers"]}


def _same_file(a, b) -> bool:
    try:
        return isinstance(a, str) and os.path.samefile(a, b)
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def torch_names() -> dict[str, list[str]] | None:
    """``{"optimizers": [...], "schedulers": [...]}`` of the torch installed here, or None when torch
    cannot be imported (noted once)."""
    torch = installed_torch()
    if torch is None:
        return _unknown("torch is not installed here")
    cache = _cache_file(torch)
    cached = _read_cache(cache, torch) if cache is not None else None
    loaded = sys.modules.get("torch")
    if loaded is not None and _same_file(getattr(loaded, "__file__", None), torch["file"]):
        names = from_namespaces(loaded)  # imported already: reading it costs nothing
    else:
        names = cached or _from_child(torch)
    if names is None:
        return _unknown(f"torch ({torch['file']}) cannot be imported")
    if cache is not None and names != cached:
        _write_cache(cache, torch, names)
    return names


def _unknown(why: str) -> None:
    """No names: said once; every name passes until torch itself builds the optimizer."""
    messages.note_once(f"{why}: optimizer and scheduler names are not checked until torch builds them.")


# -- what the rules ask -------------------------------------------------------------------------------------
def optimizer_names() -> list[str] | None:
    names = torch_names()
    return None if names is None else list(names["optimizers"])


def scheduler_names() -> list[str] | None:
    names = torch_names()
    return None if names is None else list(names["schedulers"])


def names_of(kind: str) -> list[str] | None:
    """The names a schema's ``"x-names"`` keyword allows: "optimizer", "optimizer-or-alias" (the
    optimizers experiment's list, where Momentum is SGD with momentum) or "scheduler"."""
    if kind == "scheduler":
        return scheduler_names()
    names = optimizer_names()
    if names is None or kind != "optimizer-or-alias":
        return names
    return sorted(names + list(OPTIMIZER_ALIASES))


def closest(name: str, allowed: list[str]) -> str | None:
    """The allowed name ``name`` most likely meant: the same letters in another case first (``Adamw``
    is ``AdamW``, not the nearer ``Adam``), else the closest spelling.

    Suggested, never silently corrected: params.json records exactly what ran, one spelling per
    class keeps runs comparable in tables and searches, and torch itself is case-sensitive
    (``torch.optim.Adamw`` does not exist), which is worth learning here."""
    by_case = {known.lower(): known for known in allowed}
    if name.lower() in by_case:
        return by_case[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_case), n=1)
    return by_case[close[0]] if close else None

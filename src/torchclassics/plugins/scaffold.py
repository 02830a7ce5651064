"""A project of one's own: ``torchclassics init NAME [--module FILE]``.

Without a module, a packaged experiment's params.json (and search.json) are copied into
``experiments/NAME/`` to edit. With one, a new experiment that trains as it is: the module from
``templates/experiment.py.tmpl`` (``$name`` and ``$Class`` filled in by :class:`string.Template`)
and, beside it in ``experiments/NAME/``, the template's params.json and search.json. Nothing that
exists is overwritten: the files may already hold someone's work.
"""
from __future__ import annotations

import os
import re
import string
from pathlib import Path

from ..core import files
from ..core.errors import UserError
from ..params.packaged import experiment_names, packaged_file
from .discovery import check_name, is_plugin, plugin_experiments

TEMPLATES = Path(__file__).resolve().parent / "templates"
MODULE_TEMPLATE = TEMPLATES / "experiment.py.tmpl"
PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_]*")


def init_project(name: str, folder: str | Path = ".", module: str | Path | None = None) -> list[Path]:
    """Copy ``name``'s params.json (and search.json) into ``folder/experiments/name/`` to edit; with
    ``module``, start an experiment of one's own instead (:func:`init_plugin`)."""
    if module is not None:
        return init_plugin(name, folder, module)
    check_name(name)
    if is_plugin(name):
        raise UserError(f"'{name}' is your own experiment: its files are yours to edit already (experiments/{name}/ "
                        f"in your project, or beside {plugin_experiments()[name].source}).")
    target = Path(folder).expanduser() / "experiments" / name
    sources = [packaged_file(name, f) for f in ("params.json", "search.json") if packaged_file(name, f).is_file()]
    return _write_new({target / source.name: source.read_bytes() for source in sources})


def init_plugin(name: str, folder: str | Path, module: str | Path) -> list[Path]:
    """A new experiment of one's own that trains as it is: ``module`` (relative to ``folder``)
    holds a small MLP on scikit-learn's 8x8 digits registered as ``name``, and ``experiments/name/``
    beside it its params.json and search.json (found from any folder). Edit them into your own."""
    if not PLUGIN_NAME.fullmatch(name):
        raise UserError.for_option("name", name, "an experiment's name is lower-case letters, digits and _, "
                                                 "starting with a letter.")
    if name in experiment_names():
        raise UserError(f"'{name}' is one of the package's experiments; give yours another name.")
    module_file = Path(folder).expanduser() / Path(module).expanduser()
    if module_file.suffix != ".py":
        raise UserError.for_option("module", str(module), "the module of a new experiment is a .py file.")
    target = module_file.parent / "experiments" / name  # where discovery.plugin_folder_file looks
    text = string.Template(MODULE_TEMPLATE.read_text(encoding="utf-8")).substitute(name=name, Class=class_name(name))
    return _write_new({module_file: text.encode("utf-8"),
                       target / "params.json": (TEMPLATES / "params.json").read_bytes(),
                       target / "search.json": (TEMPLATES / "search.json").read_bytes()})


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part)


def _write_new(contents: dict[Path, bytes]) -> list[Path]:
    """Write every file, or none if one exists already (a dangling link counts: it is someone's)."""
    existing = [path for path in contents if os.path.lexists(path)]
    if existing:
        raise UserError(f"{existing[0]} exists already; edit it, or move it away to start over.")
    return [files.write_bytes(path, data) for path, data in contents.items()]

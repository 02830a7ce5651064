"""Where the parameters' jobs lived until they got their own homes; kept so that the names other
code, old plugins and docs import from here keep working. New code imports from the homes:

* :mod:`torchclassics.params.sources`: the sources and their layering, ``resolve``;
* :mod:`torchclassics.params.rules`: the schema, validation and its messages;
* :mod:`torchclassics.params.torch_names`: optimizer and scheduler names;
* :mod:`torchclassics.plugins`: experiments of one's own (discovery, import, ``init``).
"""
from __future__ import annotations

from pathlib import Path

from .core import jsonfile
from .params.packaged import DEFAULTS, experiment_names, packaged_file
from .params.rules import COMMON, INFERRED, OWN, inferred_rule
from .params.sources import (
    INLINE,
    PACKAGED,
    Layers,
    defaults,
    defaults_source,
    description,
    experiment_file,
    from_text,
    packaged_defaults,
    params_file_values,
    parse_set,
    plugin_defaults,
    plugin_description,
    plugin_params_file,
    resolve,
    rules_note,
    schema,
    user_file,
    user_folders,
)
from .params.torch_names import OPTIMIZER_ALIASES, optimizer_names, scheduler_names
from .plugins.discovery import (
    ENTRY_POINT_GROUP,
    PLUGINS_VARIABLE,
    Plugin,
    add_plugin_modules,
    all_experiment_names,
    check_name,
    is_plugin,
    module_path,
    plugin_entries,
    plugin_experiments,
    plugin_folder_file,
    registered_names,
)
from .plugins.scaffold import PLUGIN_NAME, init_plugin, init_project

__all__ = ["COMMON", "DEFAULTS", "ENTRY_POINT_GROUP", "INFERRED", "INLINE", "OPTIMIZER_ALIASES", "OWN", "PACKAGED",
           "PLUGINS_VARIABLE", "PLUGIN_NAME", "Layers", "Plugin", "add_plugin_modules", "all_experiment_names",
           "check_name", "defaults", "defaults_source", "description", "experiment_file", "experiment_names",
           "from_text", "inferred_rule", "init_plugin", "init_project", "is_plugin", "module_path",
           "optimizer_names", "packaged_defaults", "packaged_file", "params_file_values", "parse_set",
           "plugin_defaults", "plugin_description", "plugin_entries", "plugin_experiments", "plugin_folder_file",
           "plugin_params_file", "read_json", "registered_names", "resolve", "rules_note", "scheduler_names",
           "schema", "user_file", "user_folders"]

# What read_json reads at most: it also reads a run's records for older callers.
READ_JSON_MAX_BYTES = 64 << 20


def read_json(path: str | Path) -> dict:
    """The JSON object in ``path``, read defensively (:func:`torchclassics.core.jsonfile.read_object`);
    a UserError naming the file and what is wrong with it. Params files have their own, stricter
    reader (:func:`torchclassics.params.sources.read_params`); run files are read through ``rundir``."""
    return jsonfile.read_object(path, READ_JSON_MAX_BYTES)

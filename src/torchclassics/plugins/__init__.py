"""Experiments of one's own: found (:mod:`.discovery`: entry points, ``$TORCHCLASSICS_PLUGINS``,
``--module``), imported when used (:mod:`.loading`), and started from a template
(:mod:`.scaffold`: ``torchclassics init NAME --module FILE``).

The decorator they use stays in :mod:`torchclassics.registry`::

    from torchclassics.registry import Experiment, experiment

Imports no torch.
"""
from .discovery import (
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
from .loading import PluginFailed, import_file, import_plugin_module
from .scaffold import init_plugin, init_project

__all__ = ["ENTRY_POINT_GROUP", "PLUGINS_VARIABLE", "Plugin", "PluginFailed", "add_plugin_modules",
           "all_experiment_names", "check_name", "import_file", "import_plugin_module", "init_plugin", "init_project",
           "is_plugin", "module_path", "plugin_entries", "plugin_experiments", "plugin_folder_file",
           "registered_names"]

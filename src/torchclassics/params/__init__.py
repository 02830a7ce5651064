"""Parameters: where they come from and how they are layered (:mod:`.sources`, with
:func:`resolve`), the rules they follow and the messages when they do not (:mod:`.rules`), the
names of torch's optimizers and schedulers (:mod:`.torch_names`), and the package's own
experiments' files (:mod:`.packaged`). Imports no torch.

``torchclassics.params`` is also the API's function: ``torchclassics.params("regression", lr=0.1)``
gives the parameters a run would use (:func:`parameters`, which the API also names ``params``). Importing this package
binds its name on ``torchclassics``, so the package itself answers that call.
"""
from __future__ import annotations

import sys
import types

__all__ = ["parameters", "resolve"]


def parameters(name: str, *, sets=None, params_file=None, **overrides) -> dict:
    """The parameters ``run`` would use, validated, without running anything: the defaults of ``name``,
    then ``params_file``, then ``sets`` (``"key=value"`` texts), then ``overrides``."""
    from .sources import resolve

    return resolve(name, params_file=params_file, sets=sets or (), overrides=overrides)


class _Callable(types.ModuleType):
    def __call__(self, name: str, **kwargs) -> dict:
        """``torchclassics.params("regression", lr=0.1)``: :func:`parameters`."""
        return parameters(name, **kwargs)


sys.modules[__name__].__class__ = _Callable


def __getattr__(name: str):
    # Loaded on use: plugins/ imports .packaged, and .sources imports plugins/.
    if name == "resolve":
        from .sources import resolve

        return resolve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

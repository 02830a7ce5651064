"""torchclassics: the classic PyTorch lessons as one reproducible, fast experiment system.

    import torchclassics
    result = torchclassics.run("regression", lr=0.2)
    net = torchclassics.estimator("classification")   # a scikit-learn estimator (skorch)
"""
__version__ = "0.1.0"

_API = ("run", "evaluate", "predict", "figures", "params", "list_experiments")
__all__ = [*_API, "estimator", "UserError", "__version__"]


def __dir__():
    # The names are loaded on first use (below), so dir() and tab completion would not see them otherwise.
    return sorted(set(globals()) | set(__all__))


def __getattr__(name):
    # Loaded on first use: `import torchclassics` stays instant.
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "estimator":
        from .estimator import estimator

        globals()["estimator"] = estimator  # the function, not the submodule the import bound here
        return estimator
    if name == "UserError":
        from .core.errors import UserError

        return UserError
    raise AttributeError(f"module 'torchclassics' has no attribute {name!r}")

"""torchclassics: the classic PyTorch lessons as one reproducible, fast experiment system.

    import torchclassics
    result = torchclassics.run("regression", lr=0.2)
"""
__version__ = "0.1.0"

_API = ("run", "evaluate", "predict", "params", "list_experiments")


def __getattr__(name):
    # Loaded on first use: `import torchclassics` stays instant.
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "UserError":
        from .errors import UserError

        return UserError
    raise AttributeError(f"module 'torchclassics' has no attribute {name!r}")

"""torchclassics: the classic PyTorch lessons as one reproducible, fast experiment system.

    import torchclassics
    result = torchclassics.run("regression", lr=0.2)
"""
__version__ = "0.1.0"

_API = ("run", "evaluate", "predict", "list_experiments")


def __getattr__(name):
    # The API imports torch (seconds); read-only commands (synthesize, report) need none of it.
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "UserError":
        from .errors import UserError

        return UserError
    raise AttributeError(f"module 'torchclassics' has no attribute {name!r}")

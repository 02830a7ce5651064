"""How to install what an export format needs: the same words for every missing extra."""


def install_hint(extra: str) -> str:
    """The command for a released install and the one for a clone of the repository."""
    return f'pip install "torchclassics[{extra}]" (from PyPI) or pip install ".[{extra}]" (in a clone)'

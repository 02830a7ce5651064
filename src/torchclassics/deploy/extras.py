"""How to install what an export format needs: the same words for every missing extra (core/extras.py)."""
from ..core.extras import install_hint

__all__ = ["install_hint"]

"""The user's-mistake error, where experiments of one's own import it from (its home: core/errors.py)."""
from .core.errors import UserError

__all__ = ["UserError"]

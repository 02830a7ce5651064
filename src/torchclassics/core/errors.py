"""The one exception type for mistakes a user can fix.

The CLI prints its message as one line and exits with status 2; no traceback. Raise it with the
offending value and what is allowed, e.g. ``UserError("lr=-1: must be > 0")``.

A mistake in an argument of the Python API names the argument (``option``) and its value: the
message reads ``device='cuda': ...`` from Python, and the CLI shows the same message with its
own spelling, ``--device cuda: ...`` (see :meth:`UserError.for_option`). Library code never
names a command-line flag.
"""
from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: bad parameter, missing data, wrong path."""

    def __init__(self, message: str, *, option: str | None = None, value=None):
        super().__init__(message)
        self.option, self.value, self.reason = option, value, message

    @classmethod
    def for_option(cls, option: str, value, reason: str) -> UserError:
        """``option=value: reason`` (the API's words); the CLI rewrites the part before the colon."""
        error = cls(f"{option}={value!r}: {reason}", option=option, value=value)
        error.reason = reason
        return error


class DamagedCheckpoint(UserError):
    """A checkpoint that cannot be trusted: not readable, not ours, or holding impossible values."""

"""The one exception type for mistakes a user can fix.

The CLI prints its message as one line and exits with status 2; no traceback. Raise it with the
offending value and what is allowed, e.g. ``UserError("lr=-1: must be > 0")``.

A mistake in an argument of the Python API names the argument (``option``) and its value, and other
arguments it mentions as ``{name}``: ``UserError.for_option("resume", True, "needs {out}, the run
directory to continue")`` reads ``resume=True: needs out, the run directory to continue`` from
Python, and the CLI renders the same error in its own words, ``--resume: needs --out, ...``
(:meth:`UserError.render`). Library code never names a command-line flag.
"""
from __future__ import annotations

import re
from collections.abc import Callable

_NAMED = re.compile(r"\{([a-z_]+)\}")


# Arguments that are switches: the API's words for them are their one useful value.
SWITCHES = ("force", "resume")


def api_words(option: str, value=None, prefix: bool = False) -> str:
    """How the Python API names an argument: ``out``, ``force=True``; as the start of an error, ``out='runs/x'``."""
    if prefix:
        return f"{option}={value!r}"
    return f"{option}=True" if option in SWITCHES else option


class UserError(Exception):
    """A mistake in the user's input: bad parameter, missing data, wrong path."""

    def __init__(self, message: str, *, option: str | None = None, value=None):
        self.template, self.option, self.value = message, option, value
        super().__init__(self.render(api_words))

    @classmethod
    def for_option(cls, option: str, value, reason: str) -> UserError:
        """``option=value: reason`` in the API's words; the CLI renders its own."""
        return cls(reason, option=option, value=value)

    @property
    def reason(self) -> str:
        return _NAMED.sub(lambda match: api_words(match.group(1)), self.template)

    def render(self, words: Callable[..., str]) -> str:
        """The message with every argument named by ``words(option, value=None, prefix=False)``."""
        text = _NAMED.sub(lambda match: words(match.group(1)), self.template)
        return f"{words(self.option, self.value, prefix=True)}: {text}" if self.option else text


class DamagedCheckpoint(UserError):
    """A checkpoint that cannot be trusted: not readable, not ours, or holding impossible values."""

"""The one exception type for mistakes a user can fix.

The CLI prints its message as one line and exits with status 2; no traceback.
Raise it with the offending value and what is allowed, e.g.
``UserError("lr=-1: must be > 0")``.
"""


class UserError(Exception):
    """A mistake in the user's input: bad parameter, missing data, wrong path."""

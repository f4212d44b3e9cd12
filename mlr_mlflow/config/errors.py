"""The errors a user can fix; shared by every layer."""
from __future__ import annotations


class UsageError(ValueError):
    """Base of the errors the user can fix (bad input, a busy or unreachable store): the command line
    prints them as one line and exits 2. Anything else that escapes a verb is a bug, reported as an
    internal error (its traceback with MLR_MLFLOW_DEBUG=1)."""


class ConfigError(UsageError):
    """Bad configuration: a usage error (exit status 2)."""

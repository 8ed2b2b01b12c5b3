"""Errors a user can fix: the CLI prints them as one message and exits with code 2, no traceback."""


class UsageError(Exception):
    """Bad input: a config value, a flag, a name, a path. The message names the field and the fix."""


class SelectorError(UsageError):
    """A selector returned something that is not a valid coreset."""

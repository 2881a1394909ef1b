"""Errors for data files."""


class DataError(ValueError):
    """A data file or folder is missing, corrupt or inconsistent; the message names it and the fix."""

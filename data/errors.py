"""One error type for bad input, so every CLI can print it as one line and exit 2."""


class InputError(Exception):
    """Bad user input (a file, a flag, a search space). The message names the culprit."""


class DataError(InputError):
    """A data file that cannot be used: missing, corrupt, or of the wrong shape."""

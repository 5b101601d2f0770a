"""The error types for bad input: every CLI prints one as one line and exits 2."""
from __future__ import annotations

from typing import Any


class InputError(Exception):
    """Bad user input (a file, a flag, a search space). The message names the culprit."""


class FieldError(InputError):
    """A config field with a value it cannot take. The field, value and reason stay apart as data, so a
    caller that knows the field by another name (a search-space key) words the message its own way."""

    def __init__(self, field: str, value: Any, reason: str):
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"{flag(field)} {value}: {reason}")


class DataError(InputError):
    """A data file that cannot be used: missing, corrupt, or of the wrong shape."""


def flag(field: str) -> str:
    """The command-line flag of a config field: batch_size -> --batch-size."""
    return "--" + field.replace("_", "-")

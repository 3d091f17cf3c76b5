"""Exceptions medcodes raises. Each carries a one-line message for a user."""

from __future__ import annotations

from typing import Any


#: How much of a user's input an error message repeats.
SHOWN_INPUT = 60


def shown(value: object, limit: int = SHOWN_INPUT) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters (inputs can be 100k long)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 1]}… ({len(str(value)):,} characters)"


def clip(message: str, limit: int = 500) -> str:
    """One line of at most ``limit`` characters: the last guard before a message is shown."""
    line = " ".join(message.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


class MedcodesError(Exception):
    """Base class: the message is one line that names the input and what is wrong."""


class DataError(MedcodesError):
    """An official file is missing, truncated, corrupt or does not match its agency's counts."""


class NotFound(MedcodesError):
    """A code that is not in any installed release (message lists the nearest codes)."""

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []
        self.system: str | None = None   # the system the code was read as, when known
        self.ended: Any = None           # datetime.date the code was last valid, when it was deleted


class NotInstalled(MedcodesError):
    """No release of a system is installed (tells the user which pull to run)."""

"""Errors that mean "the user asked for something impossible": the CLI prints them as one line, no traceback."""

from __future__ import annotations

__all__ = ["SenetError"]


class SenetError(ValueError):
    """A user-facing error: bad input file, bad config value, incompatible checkpoint.

    Subclasses ``ValueError`` so library callers can catch it as such. The message names the file or value at
    fault and says what to do; the CLI prints it on one line and exits with status 2.
    """

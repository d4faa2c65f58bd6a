"""Whole numbers written by someone else: ASCII digits only, and never too many of them.

`str.isdigit()` says yes to '²' and to '١٢٣', and `int()` then refuses the first and reads
the second as 123. Trusting that pair turned a query parameter into a 500, a `Retry-After`
into a crash, and an N-central ticket ID into another ticket's number. So every number
that arrives as text (query parameters, positions on a command line, cursors, N-central's
ticket IDs and headers) is read by `whole_number`, and the rule is written once.
"""

from __future__ import annotations

__all__ = ["LARGEST", "NotAWholeNumber", "shown", "whole_number"]

#: The largest integer that SQLite, PostgreSQL's bigint and a Java long all hold.
LARGEST = 2**63 - 1


class NotAWholeNumber(ValueError):
    """Text that is not ASCII digits, or that names a number larger than allowed."""


def whole_number(text: str, *, largest: int = LARGEST) -> int:
    """`text` as an int from 0 to `largest`: ASCII digits only, no sign, no spaces.

    The length is checked before `int()` runs, so a 5,000-digit string costs nothing and
    never reaches Python's own limit on converting long strings.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(largest)):
        raise NotAWholeNumber(f"{shown(text)} is not a whole number from 0 to {largest}")
    value = int(text)
    if value > largest:
        raise NotAWholeNumber(f"{value} is larger than {largest}")
    return value


def shown(text: str, limit: int = 40) -> str:
    """`text` quoted for an error message, shortened: echoing 5,000 digits helps nobody."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"

"""Moments in the log: an ISO-8601 time or a log position, turned into a position.

`recorded_at` never decreases along the log (the writer guarantees it), so every time
filter is a position range: "since T" starts at the first event recorded at or after T,
"until T" and "as of T" end at the last event recorded at or before T. Working in
positions keeps every query on the primary key or a `(column, position)` index, and makes
a time and a position interchangeable wherever a moment is asked for.
"""

from __future__ import annotations

from datetime import UTC, datetime

from service.digits import LARGEST, NotAWholeNumber, shown, whole_number
from service.storage.events import first_position_from, last_position_at
from service.timestamps import format_utc

__all__ = [
    "LAST_POSITION",
    "BadMoment",
    "first_position_from",
    "last_position_at",
    "parse_moment",
    "parse_time",
]


#: Larger than any position a log will reach, and still an SQLite integer.
LAST_POSITION = 2**62


class BadMoment(ValueError):
    """A value that is neither an ISO-8601 time nor a log position."""


def parse_time(text: str) -> str:
    """An ISO-8601 time as the log writes it (UTC, microseconds, `Z`), so text order is time order.

    A time without an offset is taken as UTC, like every time in the log.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadMoment(
            f"{shown(text)} is not an ISO-8601 time (e.g. 2024-05-01T09:30:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return format_utc(moment)
    except OverflowError:
        raise BadMoment(f"{shown(text)} is outside the years 1 to 9999 in UTC") from None


def parse_moment(text: str) -> int | str:
    """A log position (ASCII digits) as an int, or an ISO-8601 time as `parse_time` writes it.

    A position is at most an SQLite integer; one past the end of the log means "now".
    """
    stripped = text.strip()
    try:
        return min(whole_number(stripped), LAST_POSITION)
    except NotAWholeNumber:
        pass
    try:
        return parse_time(stripped)
    except BadMoment:
        raise BadMoment(
            f"{shown(text)} is neither a log position (ASCII digits, at most {LARGEST})"
            " nor an ISO-8601 time (e.g. 2024-05-01T09:30:00Z)"
        ) from None

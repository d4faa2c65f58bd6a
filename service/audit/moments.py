"""Moments in the log: an ISO-8601 time or a log position, turned into a position.

`recorded_at` never decreases along the log (the writer guarantees it), so every time
filter is a position range: "since T" starts at the first event recorded at or after T,
"until T" and "as of T" end at the last event recorded at or before T. Working in
positions keeps every query on the primary key or a `(column, position)` index, and makes
a time and a position interchangeable wherever a moment is asked for.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

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
        raise BadMoment(f"{text!r} is not an ISO-8601 time (e.g. 2024-05-01T09:30:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise BadMoment(f"{text!r} is outside the years 1 to 9999 in UTC") from None
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_moment(text: str) -> int | str:
    """A log position (digits) as an int, or an ISO-8601 time as `parse_time` writes it."""
    stripped = text.strip()
    if stripped.isdigit():
        # A position past the end of the log means "now"; SQLite integers stop at 2**63.
        return min(int(stripped), LAST_POSITION)
    try:
        return parse_time(stripped)
    except BadMoment:
        raise BadMoment(
            f"{text!r} is neither a log position nor an ISO-8601 time (e.g. 2024-05-01T09:30:00Z)"
        ) from None


def last_position_at(db: sqlite3.Connection, moment: int | str) -> int:
    """The last position the log held at `moment` (0 before the first event)."""
    if isinstance(moment, int):
        row = db.execute("SELECT MAX(position) FROM events WHERE position <= ?", (moment,))
    else:
        row = db.execute(_LAST_AT_TIME, (moment,))
    found = row.fetchone()
    return int(found[0] or 0) if found else 0


def first_position_from(db: sqlite3.Connection, time: str) -> int | None:
    """The first position recorded at or after `time`; None when the log ends before it."""
    found = db.execute(_FIRST_FROM_TIME, (time,)).fetchone()
    return None if found is None else int(found[0])


# Walking `events_by_time` in order and stopping at the first entry is a single index
# probe; MIN/MAX(position) over a time range would read the whole range to find it.
_FIRST_FROM_TIME = (
    "SELECT position FROM events WHERE recorded_at >= ? ORDER BY recorded_at, position LIMIT 1"
)
_LAST_AT_TIME = (
    "SELECT position FROM events WHERE recorded_at <= ?"
    " ORDER BY recorded_at DESC, position DESC LIMIT 1"
)

"""Reads of the `events` table: pages by position range, a ticket's stream, moments.

Every query walks the primary key or a `(column, position)` index: filters are equalities
on indexed columns plus a position range, and times become positions first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from typing import Literal

from service.storage.dialects import portable
from service.storage.rows import EVENT_COLUMNS, event_from_row
from statemachine.events import Event

__all__ = [
    "FILTER_COLUMNS",
    "at",
    "count",
    "explain",
    "first_position_from",
    "iter_after",
    "last_position_at",
    "select",
    "stream_length",
    "stream_slice",
    "ticket_events",
]

#: The columns a page may be filtered on by equality; each has a `(column, position)` index.
FILTER_COLUMNS = ("ticket_id", "action", "outcome", "actor")

Order = Literal["asc", "desc"]


@portable
def select(
    db: sqlite3.Connection,
    equal: Mapping[str, str],
    low: int,
    high: int,
    order: Order,
    limit: int,
) -> list[Event]:
    """Up to `limit` events at positions `low..high` whose columns equal `equal`, in `order`."""
    sql, params = _select(equal, low, high, order, limit)
    return [event_from_row(row) for row in db.execute(sql, params)]


@portable
def explain(
    db: sqlite3.Connection, equal: Mapping[str, str], low: int, high: int, order: Order
) -> list[str]:
    """SQLite's query plan for `select`: the proof that it walks an index."""
    sql, params = _select(equal, low, high, order, 100)
    return [row["detail"] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]


@portable
def iter_after(db: sqlite3.Connection, after: int = 0, *, chunk: int = 5000) -> Iterator[Event]:
    """Every event after a position, in order, a chunk at a time (constant memory)."""
    while True:
        rows = db.execute(_SELECT_AFTER, (after, chunk)).fetchall()
        for row in rows:
            yield event_from_row(row)
        if len(rows) < chunk:
            return
        after = rows[-1]["position"]


@portable
def at(db: sqlite3.Connection, position: int) -> Event | None:
    """The event at `position`, if the log has one there."""
    row = db.execute(_SELECT_AT, (position,)).fetchone()
    return event_from_row(row) if row is not None else None


@portable
def ticket_events(
    db: sqlite3.Connection, ticket_id: str, through: int | None = None
) -> Iterator[Event]:
    """One ticket's events in log order, up to position `through` when given."""
    rows = db.execute(_SELECT_TICKET, (ticket_id, through if through is not None else 2**62))
    return (event_from_row(row) for row in rows)


@portable
def stream_length(db: sqlite3.Connection, ticket_id: str) -> int:
    """How many events one ticket has (its last stream_version)."""
    return int(db.execute(_STREAM_LENGTH, (ticket_id,)).fetchone()[0])


@portable
def stream_slice(db: sqlite3.Connection, ticket_id: str, first: int, last: int) -> Iterator[Event]:
    """One ticket's events numbered `first..last` in its stream, one at a time."""
    rows = db.execute(_SELECT_SLICE, (ticket_id, first, last))
    return (event_from_row(row) for row in rows)


@portable
def count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])


@portable
def last_position_at(db: sqlite3.Connection, moment: int | str) -> int:
    """The last position the log held at `moment`, a position or a time (0 before any)."""
    if isinstance(moment, int):
        row = db.execute("SELECT MAX(position) FROM events WHERE position <= ?", (moment,))
    else:
        row = db.execute(_LAST_AT_TIME, (moment,))
    found = row.fetchone()
    return int(found[0] or 0) if found else 0


@portable
def first_position_from(db: sqlite3.Connection, time: str) -> int | None:
    """The first position recorded at or after `time`; None when the log ends before it."""
    found = db.execute(_FIRST_FROM_TIME, (time,)).fetchone()
    return None if found is None else int(found[0])


def _select(
    equal: Mapping[str, str], low: int, high: int, order: Order, limit: int
) -> tuple[str, list[object]]:
    clauses = ["position BETWEEN ? AND ?"]
    params: list[object] = [low, high]
    for column, value in equal.items():
        if column not in FILTER_COLUMNS:
            raise ValueError(f"events cannot be filtered on {column!r}")
        clauses.append(f"{column} = ?")
        params.append(value)
    direction = "ASC" if order == "asc" else "DESC"
    sql = (
        f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
        f" ORDER BY position {direction} LIMIT ?"
    )
    return sql, [*params, limit]


_COLUMNS = ", ".join(EVENT_COLUMNS)
_SELECT_AFTER = f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
_STREAM_LENGTH = "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE ticket_id = ?"
_SELECT_SLICE = (
    f"SELECT {_COLUMNS} FROM events"
    " WHERE ticket_id = ? AND stream_version BETWEEN ? AND ? ORDER BY stream_version"
)
_SELECT_AT = f"SELECT {_COLUMNS} FROM events WHERE position = ?"
_SELECT_TICKET = (
    f"SELECT {_COLUMNS} FROM events WHERE ticket_id = ? AND position <= ? ORDER BY position"
)
# Walking `events_by_time` in order and stopping at the first entry is a single index
# probe; MIN/MAX(position) over a time range would read the whole range to find it.
_FIRST_FROM_TIME = (
    "SELECT position FROM events WHERE recorded_at >= ? ORDER BY recorded_at, position LIMIT 1"
)
_LAST_AT_TIME = (
    "SELECT position FROM events WHERE recorded_at <= ?"
    " ORDER BY recorded_at DESC, position DESC LIMIT 1"
)

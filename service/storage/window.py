"""Reads for an incident window: its events' narrow columns in one pass, and stream steps.

The window is a position range, so each query walks the primary key (or the
`(ticket_id, position)` index) between two bounds. Only the columns the charts and the
summary need are read: no payload is decoded on the way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import msgspec

from service.storage.dialects import portable
from statemachine.projection import RewindRow

__all__ = [
    "Mark",
    "Move",
    "explain_marks",
    "explain_moves",
    "explain_net_entered",
    "explain_stream_rows",
    "marks",
    "moves",
    "net_entered",
    "stream_rows",
    "stream_step",
    "version_at",
]


class Mark(msgspec.Struct, frozen=True, array_like=True):
    """What one event did, without what it carried."""

    position: int
    recorded_at: str
    ticket_id: str | None
    action: str
    outcome: str
    state_before: str | None
    state_after: str | None


#: (ticket_id, outcome, state_before, state_after) of one event.
Move = tuple[str | None, str, str | None, str | None]


@portable
def marks(db: sqlite3.Connection, low: int, high: int, *, chunk: int = 5000) -> Iterator[Mark]:
    """Every event at positions `low..high`, in log order, a chunk at a time."""
    while low <= high:
        rows = db.execute(_MARKS, (low, high, chunk)).fetchall()
        for row in rows:
            yield Mark(*row)
        if len(rows) < chunk:
            return
        low = rows[-1][0] + 1


@portable
def net_entered(db: sqlite3.Connection, low: int, high: int, states: frozenset[str]) -> int:
    """How many more tickets are in `states` after the events at `low..high` than before.

    Each event counts +1 when it moved a ticket into `states`, -1 when out of them.
    """
    marks = ", ".join("?" * len(states))
    sql = _NET_ENTERED.format(marks=marks)
    row = db.execute(sql, (*sorted(states), *sorted(states), low, high)).fetchone()
    return int(row[0] or 0)


@portable
def moves(db: sqlite3.Connection, low: int, high: int) -> Iterator[list[Move]]:
    """The events at positions `low..high` in log order, as lists of plain tuples of the
    columns the review reads (no object per event but the tuple), a few thousand at a
    time so that a year-long window never sits in memory at once."""
    cursor = db.cursor()
    cursor.row_factory = None
    cursor.arraysize = _CHUNK
    cursor.execute(_MOVES, (low, high))
    return iter(cursor.fetchmany, [])


@portable
def stream_rows(
    db: sqlite3.Connection, ticket_ids: list[str], after: int, through: int
) -> list[RewindRow]:
    """What `Rewind` folds of the events of `ticket_ids` at positions `after+1..through`:
    each ticket's in log order (tickets one after another, as each folds on its own)."""
    if not ticket_ids:
        return []
    cursor = db.cursor()
    cursor.row_factory = None
    sql = _STREAM_ROWS.format(marks=", ".join("?" * len(ticket_ids)))
    return cursor.execute(sql, (*ticket_ids, after, through)).fetchall()


@portable
def version_at(db: sqlite3.Connection, ticket_id: str, position: int) -> int:
    """How many of one ticket's events the log held at `position` (its stream version then)."""
    row = db.execute(_VERSION_AT, (ticket_id, position)).fetchone()
    return int(row[0] or 0)


@portable
def stream_step(db: sqlite3.Connection, ticket_id: str, version: int) -> int | None:
    """The position of one ticket's `version`-th event; None when it has no such event."""
    row = db.execute(_STEP, (ticket_id, version)).fetchone()
    return None if row is None else int(row[0])


@portable
def explain_marks(db: sqlite3.Connection) -> list[str]:
    return _plan(db, _MARKS, (1, 2, 3))


@portable
def explain_net_entered(db: sqlite3.Connection) -> list[str]:
    return _plan(db, _NET_ENTERED.format(marks="?"), ("open", "open", 1, 2))


@portable
def explain_moves(db: sqlite3.Connection) -> list[str]:
    return _plan(db, _MOVES, (1, 2))


@portable
def explain_stream_rows(db: sqlite3.Connection) -> list[str]:
    # As the page asks: from the log's start, where only the tickets' index is short.
    return _plan(db, _STREAM_ROWS.format(marks="?, ?"), ("100001", "100002", 0, 1_000_000_000))


def _plan(db: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[str]:
    return [row["detail"] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]


_MARKS = (
    "SELECT position, recorded_at, ticket_id, action, outcome, state_before, state_after"
    " FROM events WHERE position BETWEEN ? AND ? ORDER BY position LIMIT ?"
)
_NET_ENTERED = (
    "SELECT SUM((state_after IN ({marks})) - (state_before IN ({marks}))) FROM events"
    " WHERE position BETWEEN ? AND ?"
)
_CHUNK = 5000
_MOVES = (
    "SELECT ticket_id, outcome, state_before, state_after FROM events"
    " WHERE position BETWEEN ? AND ? ORDER BY position"
)
# What `storage.events.rewind_rows` reads, for a few tickets by their own index.
_STREAM_ROWS = (
    "SELECT position, ticket_id, action, outcome, recorded_at,"
    " CASE WHEN outcome = 'accepted' THEN payload END"
    " FROM events WHERE ticket_id IN ({marks}) AND position > ? AND position <= ?"
    " AND (+outcome = 'accepted' OR +action IN ('identity_delivered', 'callback_delivered'))"
    " ORDER BY ticket_id, position"
)
_VERSION_AT = (
    "SELECT stream_version FROM events WHERE ticket_id = ? AND position <= ?"
    " ORDER BY position DESC LIMIT 1"
)
_STEP = "SELECT position FROM events WHERE ticket_id = ? AND stream_version = ?"

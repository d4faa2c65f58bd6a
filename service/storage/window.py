"""Reads for an incident window: its events' narrow columns in one pass, and stream steps.

The window is a position range, so each query walks the primary key (or the
`(ticket_id, position)` index) between two bounds. Only the columns the charts and the
summary need are read: no payload is decoded on the way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import msgspec

from service.storage.dialects import portable
from service.storage.sqlite import plain_cursor
from statemachine.projection import RewindRow
from statemachine.ticket import State

__all__ = [
    "Ends",
    "Mark",
    "Tally",
    "explain_firsts_from",
    "explain_marks",
    "explain_net_entered",
    "explain_net_entered_by_block",
    "explain_stream_rows",
    "explain_tallies",
    "explain_ticket_ends",
    "firsts_from",
    "marks",
    "net_entered",
    "net_entered_by_block",
    "stream_rows",
    "stream_step",
    "tallies",
    "ticket_ends",
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


#: (range, outcome, state_before, state_after, events): how many events of one kind the
#: `range`-th of the position ranges asked for holds.
Tally = tuple[int, str, str | None, str | None, int]
#: (range, ticket_id, state before its first event in the `range`-th of the position
#: ranges asked for, state after its last, whether one of them reopened it).
Ends = tuple[int, str, str, str, bool]


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
def net_entered_by_block(
    db: sqlite3.Connection, low: int, high: int, block: int, states: frozenset[str]
) -> list[int]:
    """`net_entered` of each `block` positions from `low` (one past a multiple of `block`)
    through `high`, in order. Here a statement a block: in-process, they cost less than
    one statement's GROUP BY over them all (0.65-0.76 s against 1.0-1.1 s for a million
    events); PostgreSQL's twin makes it one statement, not a round trip a block."""
    return [
        net_entered(db, start, min(start + block - 1, high), states)
        for start in range(low, high + 1, block)
    ]


@portable
def firsts_from(db: sqlite3.Connection, times: list[str]) -> list[int | None]:
    """For each of `times`, the first position recorded at or after it (None past the
    log's end): one statement, each time a seek of the time index."""
    if not times:
        return []
    sql = _FIRSTS_FROM.format(values=", ".join(["(?, ?)"] * len(times)))
    found = dict(db.execute(sql, [v for pair in enumerate(times) for v in pair]).fetchall())
    return [found.get(index) for index in range(len(times))]


@portable
def tallies(db: sqlite3.Connection, ranges: list[tuple[int, int]]) -> list[Tally]:
    """How many events of each (outcome, state_before, state_after) each position range
    holds, counted by the database: a window's rows never reach Python one by one.
    Empty ranges (low > high) hold nothing."""
    return _by_ranges(db, _TALLIES, ranges)


@portable
def ticket_ends(db: sqlite3.Connection, ranges: list[tuple[int, int]]) -> list[Ends]:
    """In each position range, every ticket with a stated event there: its state before
    the first of them and after the last, and whether one of them reopened it (in no
    order). Empty ranges (low > high) hold none."""
    return _by_ranges(db, _TICKET_ENDS, ranges)


@portable
def stream_rows(
    db: sqlite3.Connection, ticket_ids: list[str], after: int, through: int
) -> list[RewindRow]:
    """What `Rewind` folds of the events of `ticket_ids` at positions `after+1..through`:
    each ticket's in log order (tickets one after another, as each folds on its own)."""
    if not ticket_ids:
        return []
    cursor = plain_cursor(db)
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
def explain_net_entered_by_block(db: sqlite3.Connection) -> list[str]:
    return explain_net_entered(db)


@portable
def explain_firsts_from(db: sqlite3.Connection) -> list[str]:
    sql = _FIRSTS_FROM.format(values="(?, ?), (?, ?)")
    return _plan(db, sql, (0, "2026-01-01T00:00:00Z", 1, "2026-01-02T00:00:00Z"))


@portable
def explain_tallies(db: sqlite3.Connection) -> list[str]:
    return _plan(db, _TALLIES.format(values="(?, ?, ?), (?, ?, ?)"), (0, 1, 2, 1, 3, 4))


@portable
def explain_ticket_ends(db: sqlite3.Connection) -> list[str]:
    return _plan(db, _TICKET_ENDS.format(values="(?, ?, ?), (?, ?, ?)"), (0, 1, 2, 1, 3, 4))


@portable
def explain_stream_rows(db: sqlite3.Connection) -> list[str]:
    # As the page asks: from the log's start, where only the tickets' index is short.
    return _plan(db, _STREAM_ROWS.format(marks="?, ?"), ("100001", "100002", 0, 1_000_000_000))


def _by_ranges(db: sqlite3.Connection, sql: str, ranges: list[tuple[int, int]]) -> list[Any]:
    """The rows of a statement over `ranges` (each non-empty one with its index, as the
    `values` it is formatted with), as plain tuples."""
    asked = [(index, low, high) for index, (low, high) in enumerate(ranges) if low <= high]
    if not asked:
        return []
    cursor = plain_cursor(db)
    values = [value for triple in asked for value in triple]
    return cursor.execute(
        sql.format(values=", ".join(["(?, ?, ?)"] * len(asked))), values
    ).fetchall()


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
_FIRSTS_FROM = (
    "WITH asked(i, t) AS (VALUES {values})"
    " SELECT i, (SELECT position FROM events WHERE recorded_at >= asked.t"
    " ORDER BY recorded_at, position LIMIT 1) FROM asked"
)
_TALLIES = (
    "WITH ranges(i, low, high) AS (VALUES {values})"
    " SELECT ranges.i, e.outcome, e.state_before, e.state_after, COUNT(*)"
    " FROM ranges JOIN events AS e ON e.position BETWEEN ranges.low AND ranges.high"
    " GROUP BY ranges.i, e.outcome, e.state_before, e.state_after"
)
# A ticket's first and last stated event in each range, then those two rows by the key.
_TICKET_ENDS = (
    "WITH ranges(i, low, high) AS (VALUES {values}),"
    " touched AS ("
    " SELECT ranges.i AS i, e.ticket_id AS ticket_id, MIN(e.position) AS low,"
    " MAX(e.position) AS high,"
    f" MAX(CASE WHEN e.state_before = '{State.CLOSED}' AND e.state_after = '{State.REOPENED}'"
    " THEN 1 ELSE 0 END) AS reopened"
    " FROM ranges JOIN events AS e ON e.position BETWEEN ranges.low AND ranges.high"
    " WHERE e.ticket_id IS NOT NULL AND e.state_before <> '' AND e.state_after <> ''"
    " GROUP BY ranges.i, e.ticket_id)"
    " SELECT touched.i, touched.ticket_id, opening.state_before, closing.state_after,"
    " touched.reopened"
    " FROM touched JOIN events AS opening ON opening.position = touched.low"
    " JOIN events AS closing ON closing.position = touched.high"
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

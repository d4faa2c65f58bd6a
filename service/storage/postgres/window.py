"""An incident window's reads on PostgreSQL: `service.storage.window`, statement for statement."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from psycopg.rows import tuple_row

from service.storage.postgres.connections import Connection
from service.storage.postgres.plans import plan
from service.storage.window import Ends, Mark, Tally
from statemachine.projection import RewindRow
from statemachine.ticket import State

__all__ = [
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


def marks(db: Connection, low: int, high: int, *, chunk: int = 5000) -> Iterator[Mark]:
    """Every event at positions `low..high`, in log order, a chunk at a time."""
    while low <= high:
        rows = db.execute(_MARKS, (low, high, chunk)).fetchall()
        for row in rows:
            yield Mark(*row.values())
        if len(rows) < chunk:
            return
        low = rows[-1]["position"] + 1


def net_entered(db: Connection, low: int, high: int, states: frozenset[str]) -> int:
    """How many more tickets are in `states` after the events at `low..high` than before."""
    wanted = sorted(states)
    row = db.execute(_NET_ENTERED, (wanted, wanted, low, high)).fetchone()
    return int(row["n"] or 0) if row is not None else 0


def net_entered_by_block(
    db: Connection, low: int, high: int, block: int, states: frozenset[str]
) -> list[int]:
    """One statement for every block (a block with no counted event sums to 0)."""
    wanted = sorted(states)
    cursor = db.cursor(row_factory=tuple_row)
    sums: dict[int, int | None] = dict(
        cursor.execute(_NET_ENTERED_BY_BLOCK, (block, wanted, wanted, low, high))
    )
    first, last = (low - 1) // block, (high - 1) // block
    return [int(sums.get(number) or 0) for number in range(first, last + 1)]


def firsts_from(db: Connection, times: list[str]) -> list[int | None]:
    """For each of `times`, the first position recorded at or after it (None past the end)."""
    if not times:
        return []
    cursor = db.cursor(row_factory=tuple_row)
    found: dict[int, int] = dict(cursor.execute(_FIRSTS_FROM, (times,)).fetchall())
    return [found.get(index) for index in range(len(times))]


def tallies(db: Connection, ranges: list[tuple[int, int]]) -> list[Tally]:
    """How many events of each (outcome, state_before, state_after) each position range holds."""
    return _by_ranges(db, _TALLIES, ranges)


def ticket_ends(db: Connection, ranges: list[tuple[int, int]]) -> list[Ends]:
    """In each position range, every ticket with a stated event there: its state at both
    ends, and whether one of them reopened it (in no order)."""
    return _by_ranges(db, _TICKET_ENDS, ranges)


def stream_rows(db: Connection, ticket_ids: list[str], after: int, through: int) -> list[RewindRow]:
    """What `Rewind` folds of the events of `ticket_ids` at `after+1..through`, ticket by ticket."""
    if not ticket_ids:
        return []
    cursor = db.cursor(row_factory=tuple_row)
    return cursor.execute(_STREAM_ROWS, (ticket_ids, after, through)).fetchall()


def version_at(db: Connection, ticket_id: str, position: int) -> int:
    """How many of one ticket's events the log held at `position` (its stream version then)."""
    row = db.execute(_VERSION_AT, (ticket_id, position)).fetchone()
    return int(row["stream_version"] or 0) if row is not None else 0


def stream_step(db: Connection, ticket_id: str, version: int) -> int | None:
    """The position of one ticket's `version`-th event; None when it has no such event."""
    row = db.execute(_STEP, (ticket_id, version)).fetchone()
    return None if row is None else int(row["position"])


def explain_marks(db: Connection) -> list[str]:
    return plan(db, _MARKS, (1, 2, 3))


def explain_net_entered(db: Connection) -> list[str]:
    return plan(db, _NET_ENTERED, (["open"], ["open"], 1, 2))


def explain_net_entered_by_block(db: Connection) -> list[str]:
    return plan(db, _NET_ENTERED_BY_BLOCK, (128, ["open"], ["open"], 1, 256))


def explain_firsts_from(db: Connection) -> list[str]:
    return plan(db, _FIRSTS_FROM, (["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"],))


def explain_tallies(db: Connection) -> list[str]:
    return plan(db, _TALLIES, ([0, 1], [1, 3], [2, 4]))


def explain_ticket_ends(db: Connection) -> list[str]:
    return plan(db, _TICKET_ENDS, ([0, 1], [1, 3], [2, 4]))


def explain_stream_rows(db: Connection) -> list[str]:
    # As the page asks: from the log's start, where only the tickets' index is short.
    return plan(db, _STREAM_ROWS, (["100001", "100002"], 0, 1_000_000_000))


def _by_ranges(db: Connection, sql: str, ranges: list[tuple[int, int]]) -> list[Any]:
    """The rows of a statement over `ranges` (each non-empty one with its index, as three
    arrays), as plain tuples."""
    asked = [(index, low, high) for index, (low, high) in enumerate(ranges) if low <= high]
    if not asked:
        return []
    cursor = db.cursor(row_factory=tuple_row)
    indexes, lows, highs = (list(column) for column in zip(*asked, strict=True))
    return cursor.execute(sql, (indexes, lows, highs)).fetchall()


_MARKS = (
    "SELECT position, recorded_at, ticket_id, action, outcome, state_before, state_after"
    " FROM events WHERE position BETWEEN %s AND %s ORDER BY position LIMIT %s"
)
# A NULL state counts neither way, as on SQLite (NULL IN ... is NULL, and SUM skips it).
_NET_ENTERED = (
    "SELECT SUM((state_after = ANY(%s))::int - (state_before = ANY(%s))::int) AS n"
    " FROM events WHERE position BETWEEN %s AND %s"
)
_NET_ENTERED_BY_BLOCK = (
    "SELECT (position - 1) / %s AS block,"
    " SUM((state_after = ANY(%s))::int - (state_before = ANY(%s))::int)"
    " FROM events WHERE position BETWEEN %s AND %s GROUP BY block"
)
# Arrays in, one row per element out (WITH ORDINALITY counts from 1).
_FIRSTS_FROM = (
    "SELECT asked.i - 1, (SELECT position FROM events WHERE recorded_at >= asked.t"
    " ORDER BY recorded_at, position LIMIT 1)"
    " FROM unnest(%s::text[]) WITH ORDINALITY AS asked(t, i)"
)
# Each range counted in a LATERAL subquery, so each is a walk of the primary key. Joined
# to the ranges instead, the events were planned from the table's statistics: on a
# million events the planner scanned and hashed the whole log (1.1-1.6 s for a week's
# fifteen periods, against 15 ms range by range).
_TALLIES = (
    "SELECT ranges.i, counted.outcome, counted.state_before, counted.state_after, counted.n"
    " FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) AS ranges(i, low, high)"
    " CROSS JOIN LATERAL (SELECT outcome, state_before, state_after, COUNT(*)::int AS n"
    " FROM events WHERE position BETWEEN ranges.low AND ranges.high"
    " GROUP BY outcome, state_before, state_after) AS counted"
)
_TICKET_ENDS = (
    "WITH touched AS ("
    " SELECT ranges.i AS i, ends.ticket_id, ends.low, ends.high, ends.reopened"
    " FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) AS ranges(i, low, high)"
    " CROSS JOIN LATERAL (SELECT ticket_id, MIN(position) AS low, MAX(position) AS high,"
    f" bool_or(state_before = '{State.CLOSED}' AND state_after = '{State.REOPENED}')"
    " AS reopened FROM events WHERE position BETWEEN ranges.low AND ranges.high"
    " AND ticket_id IS NOT NULL AND state_before <> '' AND state_after <> ''"
    " GROUP BY ticket_id) AS ends)"
    # Each end by the key, as a subquery: the planner cannot tell how many rows the
    # asked ranges group into, and would hash-join the whole log to be safe.
    " SELECT touched.i, touched.ticket_id,"
    " (SELECT state_before FROM events WHERE position = touched.low),"
    " (SELECT state_after FROM events WHERE position = touched.high),"
    " touched.reopened FROM touched"
)
_STREAM_ROWS = (
    "SELECT position, ticket_id, action, outcome, recorded_at,"
    " CASE WHEN outcome = 'accepted' THEN payload END AS payload"
    " FROM events WHERE ticket_id = ANY(%s) AND position > %s AND position <= %s"
    " AND (outcome = 'accepted' OR action IN ('identity_delivered', 'callback_delivered'))"
    " ORDER BY ticket_id, position"
)
_VERSION_AT = (
    "SELECT stream_version FROM events WHERE ticket_id = %s AND position <= %s"
    " ORDER BY position DESC LIMIT 1"
)
_STEP = "SELECT position FROM events WHERE ticket_id = %s AND stream_version = %s"

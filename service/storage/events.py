"""Reads of the `events` table: pages by position range, a ticket's stream, moments.

Every query walks the primary key or a `(column, position)` index: filters are equalities
on indexed columns plus a position range, and times become positions first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from itertools import pairwise, starmap
from typing import Any, Literal, NamedTuple, TypeVar

import msgspec

from service.storage.dialects import portable
from service.storage.rows import EVENT_COLUMNS, event_from_row, event_from_values
from service.storage.sqlite import plain_cursor
from statemachine.events import Event
from statemachine.projection import RewindRow

__all__ = [
    "EVERY_TICKET",
    "FILTER_COLUMNS",
    "Link",
    "Shown",
    "TicketRange",
    "at",
    "before_first",
    "count",
    "explain",
    "first_position_from",
    "iter_after",
    "last_position",
    "last_position_at",
    "links_to_check",
    "ranges_between",
    "rewind_rows",
    "rows_for_rules",
    "select",
    "select_shown",
    "stream_length",
    "stream_slice",
    "ticket_events",
    "ticket_ranges",
]

#: The columns a page may be filtered on by equality; each has a `(column, position)` index.
FILTER_COLUMNS = ("ticket_id", "action", "outcome", "actor")

Order = Literal["asc", "desc"]


_V = TypeVar("_V")


class TicketRange(msgspec.Struct, frozen=True):
    """The tickets whose ids sort from `low` (included) to `high` (left out); None is no
    bound, and events without a ticket fall in the range with no `low`.

    A ticket's events depend on no other ticket's, so `verify` checks each range in a
    process of its own. Ids compare as SQLite compares text, byte by byte: Python's order
    of code points is the order of their UTF-8 bytes, so a range holds the same tickets
    in SQL and here, whatever an id holds (a NUL included).
    """

    low: str | None = None
    high: str | None = None

    def holds(self, ticket_id: str | None) -> bool:
        if ticket_id is None:
            return self.low is None
        return (self.low is None or self.low <= ticket_id) and (
            self.high is None or ticket_id < self.high
        )

    def kept(self, by_ticket: Mapping[str, _V]) -> dict[str, _V]:
        """The entries of `by_ticket` whose ticket the range `holds`, the bounds compared
        inline rather than by a call a ticket: `verify` keeps its part of every
        checkpoint, a full one holding every ticket."""
        low, high = self.low, self.high
        if high is None:
            if low is None:
                return dict(by_ticket)
            return {ticket_id: value for ticket_id, value in by_ticket.items() if low <= ticket_id}
        if low is None:
            return {ticket_id: value for ticket_id, value in by_ticket.items() if ticket_id < high}
        return {
            ticket_id: value for ticket_id, value in by_ticket.items() if low <= ticket_id < high
        }


#: Every ticket, and the events without one.
EVERY_TICKET = TicketRange()


class Shown(msgspec.Struct, frozen=True, gc=False):
    """The columns of an event a timeline shows: not its hashes, request id or versions,
    which a page of fifty would read and make strings of for nothing. A Struct, not a
    NamedTuple: made from a row at a fifth of the cost, its fields read at half."""

    position: int
    ticket_id: str | None
    action: str
    outcome: str
    state_before: str | None
    state_after: str | None
    recorded_at: str
    actor: str
    payload: str
    response: str | None


class Link(NamedTuple):
    """A row's link: its `prev_hash`, and the row before it (position 0 and no hash when it
    is the first)."""

    position: int
    prev_hash: str
    previous: int
    previous_hash: str | None


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
    cursor = plain_cursor(db)
    return list(map(event_from_values, cursor.execute(sql, params)))


@portable
def select_shown(
    db: sqlite3.Connection,
    equal: Mapping[str, str],
    low: int,
    high: int,
    order: Order,
    limit: int,
) -> list[Shown]:
    """`select`'s events, only the columns a timeline shows of each."""
    sql, params = _select(equal, low, high, order, limit, _SHOWN_COLUMNS)
    cursor = plain_cursor(db)
    return list(starmap(Shown, cursor.execute(sql, params)))


@portable
def explain(
    db: sqlite3.Connection, equal: Mapping[str, str], low: int, high: int, order: Order
) -> list[str]:
    """SQLite's query plan for `select`: the proof that it walks an index."""
    sql, params = _select(equal, low, high, order, 100)
    return [row["detail"] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]


@portable
def iter_after(
    db: sqlite3.Connection, after: int = 0, through: int = 2**62, *, chunk: int = 5000
) -> Iterator[Event]:
    """Every event after a position (through another), in order, a chunk at a time."""
    cursor = plain_cursor(db, arraysize=chunk)
    cursor.execute(_SELECT_RANGE, (after, through))
    while rows := cursor.fetchmany():
        yield from map(event_from_values, rows)


@portable
def rows_for_rules(
    db: sqlite3.Connection, through: int, tickets: TicketRange = EVERY_TICKET
) -> Iterator[tuple[Any, ...]]:
    """Every row of `tickets` through position `through` as stored, in position order:
    plain tuples, `EVENT_COLUMNS`.

    `verify` hashes each row and re-derives its outcome in one pass: one read of the log
    for both, and no `Event` built for a row.
    """
    sql, params = _of_tickets(_SELECT_FOR_RULES, (through,), tickets)
    cursor = plain_cursor(db, arraysize=5000)
    return cursor.execute(sql + " ORDER BY position", params)


@portable
def links_to_check(db: sqlite3.Connection, through: int, keep: int) -> list[Link]:
    """The first `keep` rows through `through` whose link to the row before may be
    broken, in position order, each with what it must be linked to: the rows with no row
    at the position just before (the first row, and each row after a gap), and those whose
    `prev_hash` is not the hash of the row just before.

    One pass inside SQLite (a left self-join on the primary key) reads no row into Python:
    each row's own hash is checked where its columns are read anyway.
    """
    return [_link(db, row[0]) for row in db.execute(_TO_CHECK, (through, keep)).fetchall()]


@portable
def before_first(db: sqlite3.Connection, keep: int) -> list[int]:
    """The first `keep` positions below 1, where the writer never puts a row."""
    return [row[0] for row in db.execute(_BEFORE_FIRST, (keep,)).fetchall()]


@portable
def last_position(db: sqlite3.Connection) -> int:
    """The position of the last event (0 on an empty log)."""
    return int(db.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])


@portable
def rewind_rows(
    db: sqlite3.Connection, after: int, through: int, tickets: TicketRange = EVERY_TICKET
) -> Iterator[RewindRow]:
    """What time travel folds of the events at positions `after+1..through`, in order.

    Only the events that can change what a ticket shows (accepted requests, deliveries),
    as plain tuples of the few columns `Rewind` reads: SQLite skips the rest. Only those
    of `tickets`.
    """
    sql, params = _of_tickets(_REWIND_ROWS, (after, through), tickets)
    return _tuples(db, sql + " ORDER BY position", params, 2000)


@portable
def ticket_ranges(db: sqlite3.Connection, parts: int) -> list[TicketRange]:
    """At most `parts` ranges of tickets with about as many events each, every ticket in
    exactly one: the ids at even steps of the `events_by_ticket` index cut them."""
    total = int(db.execute(_COUNT_TICKETED).fetchone()[0])
    cuts = [db.execute(_NTH_TICKET, (total * n // parts,)).fetchone() for n in range(1, parts)]
    return ranges_between([cut[0] for cut in cuts if cut is not None])


def ranges_between(cuts: list[str]) -> list[TicketRange]:
    """The ranges that `cuts` (ticket ids) separate: sorted, so that every ticket falls in
    exactly one, and the same cut twice is one."""
    bounds = [None, *sorted(set(cuts)), None]
    return [TicketRange(low, high) for low, high in pairwise(bounds)]


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


def _link(db: sqlite3.Connection, position: int) -> Link:
    prev_hash = db.execute(_PREV_HASH, (position,)).fetchone()[0]
    before = db.execute(_ROW_BEFORE, (position,)).fetchone()
    return Link(position, prev_hash, *(before or (0, None)))


def _tuples(db: sqlite3.Connection, sql: str, params: tuple[Any, ...], size: int) -> Iterator[Any]:
    """The rows of `sql` as plain tuples, `size` at a time: no Row object per row."""
    cursor = plain_cursor(db, arraysize=size)
    cursor.execute(sql, params)
    while rows := cursor.fetchmany():
        yield from rows


def _of_tickets(
    sql: str, params: tuple[Any, ...], tickets: TicketRange
) -> tuple[str, tuple[Any, ...]]:
    """`sql` (a WHERE clause last) narrowed to `tickets`. The unary + keeps SQLite on the
    primary key: the rows come in position order, and two comparisons a row are all the
    narrowing costs. The events without a ticket fall in the range with no `low`, as
    `TicketRange.holds` has it: a NULL id passes no comparison, and without the IS NULL
    those events were in no range, so `verify` in worker processes never hashed them."""
    if tickets.low is not None:
        sql, params = sql + " AND +ticket_id >= ?", (*params, tickets.low)
    if tickets.high is not None:
        ticketless = " OR +ticket_id IS NULL" if tickets.low is None else ""
        sql, params = sql + f" AND (+ticket_id < ?{ticketless})", (*params, tickets.high)
    return sql, params


def _select(
    equal: Mapping[str, str],
    low: int,
    high: int,
    order: Order,
    limit: int,
    columns: str | None = None,
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
        f"SELECT {columns or _COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
        f" ORDER BY position {direction} LIMIT ?"
    )
    return sql, [*params, limit]


_COLUMNS = ", ".join(EVENT_COLUMNS)
_SHOWN_COLUMNS = ", ".join(Shown.__struct_fields__)
_SELECT_RANGE = (
    f"SELECT {_COLUMNS} FROM events WHERE position > ? AND position <= ? ORDER BY position"
)
_SELECT_FOR_RULES = f"SELECT {_COLUMNS} FROM events WHERE position > 0 AND position <= ?"
_TO_CHECK = (
    "SELECT later.position FROM events AS later LEFT JOIN events AS earlier"
    " ON earlier.position = later.position - 1 AND earlier.position > 0"
    " WHERE later.position > 0 AND later.position <= ?"
    " AND (earlier.position IS NULL OR later.prev_hash IS NOT earlier.hash)"
    " ORDER BY later.position LIMIT ?"
)
_BEFORE_FIRST = "SELECT position FROM events WHERE position < 1 ORDER BY position LIMIT ?"
_PREV_HASH = "SELECT prev_hash FROM events WHERE position = ?"
_ROW_BEFORE = (
    "SELECT position, hash FROM events WHERE position > 0 AND position < ?"
    " ORDER BY position DESC LIMIT 1"
)
_REWIND_ROWS = (
    "SELECT position, ticket_id, action, outcome, recorded_at,"
    " CASE WHEN outcome = 'accepted' THEN payload END"
    " FROM events WHERE position > ? AND position <= ?"
    # The unary + keeps SQLite on the primary key: an index per term would mean a sort.
    " AND (+outcome = 'accepted' OR +action IN ('identity_delivered', 'callback_delivered'))"
)
_COUNT_TICKETED = "SELECT COUNT(ticket_id) FROM events"
_NTH_TICKET = (
    "SELECT ticket_id FROM events WHERE ticket_id IS NOT NULL ORDER BY ticket_id LIMIT 1 OFFSET ?"
)
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

"""Filtered reads of the event log, a page at a time or streamed, for the API and the CLI.

Every filter becomes an equality on an indexed column plus a position range (times are
turned into positions first, see `timepoints`), so each page is a short walk down a
`(column, position)` index or the primary key whatever the size of the log. The cursor is
the last position served: positions only grow, so a page that starts after it never
repeats an event, and never skips one, even while the writer appends.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
from collections.abc import Iterator
from typing import Any, Literal

import msgspec

from service.audit.moments import LAST_POSITION, first_position_from, last_position_at
from service.storage import sqlite as store
from statemachine.events import Action, Event, Fact, Outcome

__all__ = [
    "ACTIONS",
    "MAX_LIMIT",
    "OUTCOMES",
    "BadCursor",
    "EventFilter",
    "Order",
    "Page",
    "decode_cursor",
    "encode_cursor",
    "explain",
    "iter_matching",
    "normalise_action",
    "search",
]

MAX_LIMIT = 1000
ACTIONS = frozenset({*(a.value for a in Action), *(f.value for f in Fact)})
OUTCOMES = frozenset(o.value for o in Outcome)

Order = Literal["asc", "desc"]


class BadCursor(ValueError):
    """A cursor this service did not hand out, or one for the other order."""


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What an auditor narrows the log by; times are normalised by `timepoints.parse_time`."""

    ticket: str | None = None
    action: str | None = None
    outcome: str | None = None
    actor: str | None = None
    since: str | None = None
    until: str | None = None


class Page(msgspec.Struct, frozen=True):
    events: list[Event]
    next: str | None


def search(
    db: sqlite3.Connection,
    where: EventFilter,
    *,
    order: Order = "asc",
    limit: int = 100,
    cursor: str | None = None,
) -> Page:
    """One page of matching events, and the cursor of the next page (None when none is left)."""
    bounds = _bounds(db, where)
    if bounds is None:
        return Page([], None)
    low, high = bounds
    if cursor is not None:
        after = decode_cursor(cursor, order)
        low, high = (max(low, after + 1), high) if order == "asc" else (low, min(high, after - 1))
    rows = _select(db, where, low, high, order, limit + 1)
    events = [store.event_from_row(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(events, encode_cursor(order, events[-1].position) if more else None)


def iter_matching(
    db: sqlite3.Connection, where: EventFilter, *, chunk: int = 5000
) -> Iterator[Event]:
    """Every matching event in log order, a chunk at a time: constant memory on any log."""
    bounds = _bounds(db, where)
    if bounds is None:
        return
    low, high = bounds
    while low <= high:
        rows = _select(db, where, low, high, "asc", chunk)
        for row in rows:
            yield store.event_from_row(row)
        if len(rows) < chunk:
            return
        low = rows[-1][0] + 1


def explain(db: sqlite3.Connection, where: EventFilter, order: Order = "asc") -> list[str]:
    """SQLite's query plan for a page of `where`: the proof that it walks an index."""
    sql, params = _query(where, 1, LAST_POSITION, order, 100)
    return [row[-1] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]


def normalise_action(text: str) -> str:
    """`resolve` and `close` mean RESOLVE, as they do when N-central sends them."""
    upper = text.strip().upper()
    if upper == "CLOSE":
        return Action.RESOLVE.value
    return upper if upper in Action.__members__ else text.strip().lower()


def encode_cursor(order: Order, position: int) -> str:
    return base64.urlsafe_b64encode(f"{order}:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: Order) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, position = text.partition(":")
        value = int(position)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("not a cursor this service handed out") from None
    if not 0 <= value <= LAST_POSITION:
        raise BadCursor("not a cursor this service handed out")
    if kind != order:
        raise BadCursor(f"this cursor pages in {kind!r} order, not {order!r}")
    return value


def _bounds(db: sqlite3.Connection, where: EventFilter) -> tuple[int, int] | None:
    """The position range that the time filters select; None when it is empty."""
    low, high = 1, LAST_POSITION
    if where.since is not None:
        first = first_position_from(db, where.since)
        if first is None:
            return None
        low = first
    if where.until is not None:
        high = last_position_at(db, where.until)
    return (low, high) if low <= high else None


def _select(
    db: sqlite3.Connection, where: EventFilter, low: int, high: int, order: Order, limit: int
) -> list[tuple[Any, ...]]:
    sql, params = _query(where, low, high, order, limit)
    return db.execute(sql, params).fetchall()


def _query(
    where: EventFilter, low: int, high: int, order: Order, limit: int
) -> tuple[str, list[object]]:
    clauses = ["position BETWEEN ? AND ?"]
    params: list[object] = [low, high]
    for column, value in (
        ("ticket_id", where.ticket),
        ("action", where.action),
        ("outcome", where.outcome),
        ("actor", where.actor),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    direction = "ASC" if order == "asc" else "DESC"
    sql = (
        f"SELECT {', '.join(store.EVENT_COLUMNS)} FROM events WHERE {' AND '.join(clauses)}"
        f" ORDER BY position {direction} LIMIT ?"
    )
    return sql, [*params, limit]

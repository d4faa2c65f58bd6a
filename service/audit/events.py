"""Filtered reads of the event log, a page at a time or streamed, for the API and the CLI.

Every filter becomes an equality on an indexed column plus a position range (times are
turned into positions first, see `timepoints`), so each page is a short walk down a
`(column, position)` index or the primary key whatever the size of the log. The cursor is
the last position served: positions only grow, so a page that starts after it never
repeats an event, and never skips one, even while the writer appends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Literal, TypeVar

import msgspec

from service.audit.cursors import BadCursor, decode_cursor, encode_cursor
from service.audit.moments import LAST_POSITION, first_position_from, last_position_at
from service.digits import NotAWholeNumber, whole_number
from service.storage import events as stored
from statemachine.events import Action, Event, Fact, Outcome, action_named

__all__ = [
    "ACTIONS",
    "MAX_LIMIT",
    "OUTCOMES",
    "EventFilter",
    "Order",
    "Page",
    "ShownPage",
    "cursor_position",
    "explain",
    "iter_matching",
    "normalise_action",
    "position_cursor",
    "search",
    "timeline",
]

MAX_LIMIT = 1000
ACTIONS = frozenset({*(a.value for a in Action), *(f.value for f in Fact)})
OUTCOMES = frozenset(o.value for o in Outcome)

Order = Literal["asc", "desc"]
#: A row a page is read as: a whole event, or the columns a timeline shows.
Row = TypeVar("Row", Event, stored.Shown)


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


class ShownPage(msgspec.Struct, frozen=True):
    """A page of a timeline: `search`'s, only the columns it shows of each event."""

    events: list[stored.Shown]
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
    return Page(*_page(db, where, order, limit, cursor, stored.select))


def timeline(
    db: sqlite3.Connection,
    where: EventFilter,
    *,
    limit: int,
    cursor: str | None,
    within: tuple[int, int],
) -> ShownPage:
    """`search`'s page in log order, only the columns a timeline shows of each event.
    `within` is the range of positions `where`'s times select, found by the caller
    already (the review page, for its window): two statements fewer."""
    return ShownPage(*_page(db, where, "asc", limit, cursor, stored.select_shown, within))


def iter_matching(
    db: sqlite3.Connection, where: EventFilter, *, chunk: int = 5000
) -> Iterator[Event]:
    """Every matching event in log order, a chunk at a time: constant memory on any log."""
    bounds = _bounds(db, where)
    if bounds is None:
        return
    low, high = bounds
    while low <= high:
        events = stored.select(db, _equal(where), low, high, "asc", chunk)
        yield from events
        if len(events) < chunk:
            return
        low = events[-1].position + 1


def explain(db: sqlite3.Connection, where: EventFilter, order: Order = "asc") -> list[str]:
    """SQLite's query plan for a page of `where`: the proof that it walks an index."""
    return stored.explain(db, _equal(where), 1, LAST_POSITION, order)


def normalise_action(text: str) -> str:
    """`resolve` and `close` mean RESOLVE, as they do when N-central sends them."""
    action = action_named(text)
    return action.value if action is not None else text.strip().lower()


def position_cursor(order: Order, position: int) -> str:
    """The cursor of the page after `position`, paging in `order`."""
    return encode_cursor(order, str(position))


def cursor_position(cursor: str, order: Order) -> int:
    """The position a cursor of `order` stopped at."""
    try:
        return whole_number(decode_cursor(cursor, order), largest=LAST_POSITION)
    except NotAWholeNumber:
        raise BadCursor("not a cursor this service handed out") from None


def _page(
    db: sqlite3.Connection,
    where: EventFilter,
    order: Order,
    limit: int,
    cursor: str | None,
    read: Callable[[sqlite3.Connection, dict[str, str], int, int, Order, int], list[Row]],
    within: tuple[int, int] | None = None,
) -> tuple[list[Row], str | None]:
    """Up to `limit` matching rows as `read` reads them, and the next page's cursor."""
    bounds = _bounds(db, where) if within is None else within
    if bounds is None or bounds[0] > bounds[1]:
        return [], None
    low, high = bounds
    if cursor is not None:
        after = cursor_position(cursor, order)
        low, high = (max(low, after + 1), high) if order == "asc" else (low, min(high, after - 1))
    found = read(db, _equal(where), low, high, order, limit + 1)
    rows = found[:limit]
    more = len(found) > limit
    return rows, position_cursor(order, rows[-1].position) if more else None


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


def _equal(where: EventFilter) -> dict[str, str]:
    columns = {
        "ticket_id": where.ticket,
        "action": where.action,
        "outcome": where.outcome,
        "actor": where.actor,
    }
    return {column: value for column, value in columns.items() if value is not None}

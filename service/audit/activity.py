"""Tickets now, for the console's front page: counts by state and the latest activity.

The API lists tickets by ncentralTicketId, which suits a tool paging through all of
them; a person opening the console wants what moved last at the top. Both read the same
`tickets` projection through service.storage, each order on its own index.
"""

from __future__ import annotations

import sqlite3
import threading

import msgspec

from service.audit.cursors import BadCursor, decode_cursor, encode_cursor
from service.digits import NotAWholeNumber, whole_number
from service.storage import activity as stored
from service.storage import window as stored_window
from service.storage.activity import ActivityRow
from service.storage.textindex import TextIndex

__all__ = [
    "ActivityFilter",
    "ActivityPage",
    "ActivityRow",
    "StateCounts",
    "activity_cursor",
    "carry_counts",
    "explain_activity",
    "head_position",
    "recent_activity",
    "state_counts",
]

head_position = stored.head_position
state_counts = stored.state_counts


class StateCounts:
    """Tickets by state, carried along the log from the last count instead of counted again.

    Counting 100,000 tickets by state reads the whole `tickets_by_state` index. Each
    event since the last count moved at most one ticket from `state_before` to
    `state_after`, so a page asked for moments later reads those few events instead.
    Each call answers for its own read snapshot (its head position), before or after the
    one remembered; past `recount_after` events away, counting again is cheaper.
    """

    def __init__(self, *, recount_after: int = 20_000) -> None:
        self._recount_after = recount_after
        self._lock = threading.Lock()
        self._known: tuple[int, dict[str, int]] | None = None

    def __call__(self, db: sqlite3.Connection) -> dict[str, int]:
        head = stored.head_position(db)
        with self._lock:
            known = self._known
        if known is not None and abs(head - known[0]) <= self._recount_after:
            counts = carry_counts(db, known[1], known[0], head)
        else:
            counts = stored.state_counts(db)
        with self._lock:
            if self._known is None or head > self._known[0]:
                self._known = (head, counts)
        return dict(counts)


def carry_counts(
    db: sqlite3.Connection, counts: dict[str, int], start: int, end: int
) -> dict[str, int]:
    """`counts` as of log position `start`, moved to position `end` (either side of it)."""
    carried = dict(counts)
    sign = 1 if end >= start else -1
    for mark in stored_window.marks(db, min(start, end) + 1, max(start, end)):
        before, after = mark.state_before, mark.state_after
        if before == after or before is None or after is None:
            continue
        for state, step in ((after, sign), (before, -sign)):
            if state != _NEVER_A_ROW:
                carried[state] = carried.get(state, 0) + step
    return {state: n for state, n in carried.items() if n}


#: The state of a ticket that does not exist: it has no row in `tickets` to count.
_NEVER_A_ROW = "new"


class ActivityFilter(msgspec.Struct, frozen=True, kw_only=True):
    state: str | None = None
    #: (key, value) pairs of customTags; a ticket must carry every one.
    tags: tuple[tuple[str, str], ...] = ()
    ncentral_ticket_id: str | None = None
    #: Text that the title or the details contain, whatever its case.
    text: str | None = None


class ActivityPage(msgspec.Struct, frozen=True):
    rows: list[ActivityRow]
    next: str | None


def recent_activity(
    db: sqlite3.Connection,
    where: ActivityFilter,
    *,
    limit: int = 50,
    cursor: str | None = None,
    texts: TextIndex | None = None,
) -> ActivityPage:
    """A page of tickets matching `where`, the most recently updated first.

    With `texts`, a text filter starts from the tickets the index says may match
    (checked as without it: the same page), unless the index says to walk."""
    before = activity_cursor(cursor) if cursor is not None else None
    found = None
    if texts is not None and where.text is not None:
        found = _from_candidates(db, where, limit + 1, before, texts)
    if found is None:
        found = _recent(db, where, limit + 1, before)
    rows = found[:limit]
    more = len(found) > limit
    return ActivityPage(rows, _cursor(rows[-1]) if more else None)


def activity_cursor(cursor: str) -> tuple[str, int]:
    """The (updated_at, rowid) a cursor of this listing stopped at."""
    updated_at, _, rowid = decode_cursor(cursor, _KIND).rpartition("|")
    try:
        return updated_at, whole_number(rowid)
    except NotAWholeNumber:
        raise BadCursor("not a cursor this service handed out") from None


def explain_activity(db: sqlite3.Connection, where: ActivityFilter) -> list[str]:
    """SQLite's plan for a page of `where`."""
    return stored.explain_recent(
        db,
        state=where.state,
        tags=where.tags,
        ncentral_ticket_id=where.ncentral_ticket_id,
        text=where.text,
    )


def _from_candidates(
    db: sqlite3.Connection,
    where: ActivityFilter,
    wanted: int,
    before: tuple[str, int] | None,
    texts: TextIndex,
) -> list[ActivityRow] | None:
    """Up to `wanted` rows of the page from the text index's candidates; None: walk.

    The index hands over the latest active candidates; the log checks them with the
    filter itself. When too few pass, more of them are asked for, until all were."""
    asked = wanted
    while True:
        chosen = texts.candidates(
            db, str(where.text), before=before[0] if before else None, wanted=asked
        )
        if chosen is None:
            return None
        found = _recent(db, where, wanted, before, among=chosen.keys)
        if len(found) == wanted or chosen.complete:
            return found
        asked *= 4


def _recent(
    db: sqlite3.Connection,
    where: ActivityFilter,
    limit: int,
    before: tuple[str, int] | None,
    among: list[str] | None = None,
) -> list[ActivityRow]:
    return stored.recent(
        db,
        limit=limit,
        before=before,
        state=where.state,
        tags=where.tags,
        ncentral_ticket_id=where.ncentral_ticket_id,
        text=where.text,
        among=among,
    )


def _cursor(row: ActivityRow) -> str:
    return encode_cursor(_KIND, f"{row.updated_at}|{row.rowid}")


_KIND = "a"

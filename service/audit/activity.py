"""Tickets now, for the console's front page: counts by state and the latest activity.

The API lists tickets by ncentralTicketId, which suits a tool paging through all of
them; a person opening the console wants what moved last at the top. Both read the same
`tickets` projection through service.storage, each order on its own index.
"""

from __future__ import annotations

import sqlite3

import msgspec

from service.audit.cursors import BadCursor, decode_cursor, encode_cursor
from service.digits import NotAWholeNumber, whole_number
from service.storage import activity as stored
from service.storage.activity import ActivityRow

__all__ = [
    "ActivityFilter",
    "ActivityPage",
    "ActivityRow",
    "activity_cursor",
    "explain_activity",
    "head_position",
    "recent_activity",
    "state_counts",
]

head_position = stored.head_position
state_counts = stored.state_counts


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
    db: sqlite3.Connection, where: ActivityFilter, *, limit: int = 50, cursor: str | None = None
) -> ActivityPage:
    """A page of tickets matching `where`, the most recently updated first."""
    before = activity_cursor(cursor) if cursor is not None else None
    found = stored.recent(
        db,
        limit=limit + 1,
        before=before,
        state=where.state,
        tags=where.tags,
        ncentral_ticket_id=where.ncentral_ticket_id,
        text=where.text,
    )
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


def _cursor(row: ActivityRow) -> str:
    return encode_cursor(_KIND, f"{row.updated_at}|{row.rowid}")


_KIND = "a"

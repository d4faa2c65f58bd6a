"""Tickets for the API: now from the `tickets` projection, or at a moment by replay.

Pages are ordered by ncentralTicketId, which never changes, so a ticket that is updated
while someone pages does not jump to another page. Each filter is an index: state by
`tickets_by_state_id`, tags through the trigger-kept `ticket_tags` table.
"""

from __future__ import annotations

import sqlite3

import msgspec

from service.audit.cursors import decode_cursor, encode_cursor
from service.audit.replay import rewind, ticket_at
from service.storage import tickets as stored
from statemachine.projection import Record, Ticket

__all__ = [
    "TicketFilter",
    "TicketPage",
    "cursor_ticket",
    "find_ticket",
    "list_tickets",
    "ticket_cursor",
]


class TicketFilter(msgspec.Struct, frozen=True, kw_only=True):
    state: str | None = None
    #: (key, value) pairs of customTags; a ticket must carry every one.
    tags: tuple[tuple[str, str], ...] = ()
    updated_since: str | None = None


class TicketPage(msgspec.Struct, frozen=True):
    tickets: list[Ticket]
    next: str | None


def list_tickets(
    db: sqlite3.Connection,
    where: TicketFilter,
    *,
    limit: int = 100,
    cursor: str | None = None,
    as_of: int | None = None,
) -> TicketPage:
    """A page of tickets matching `where`, now or as the first `as_of` events left them."""
    after = cursor_ticket(cursor) if cursor is not None else ""
    if as_of is None:
        found = _select(db, where, after, limit + 1)
    else:
        found = _replayed(db, where, after, limit + 1, as_of)
    page = found[:limit]
    more = len(found) > limit
    return TicketPage(page, ticket_cursor(page[-1].ncentral_ticket_id) if more else None)


def find_ticket(
    db: sqlite3.Connection, external_ticket_id: str, *, as_of: int | None = None
) -> Ticket | None:
    """The ticket known to N-central as `external_ticket_id`; None if it did not exist then."""
    ticket = stored.by_external_id(db, external_ticket_id)
    if ticket is None or as_of is None:
        return ticket
    # Tickets are never removed, so one that existed then is in the table now.
    return ticket_at(db, ticket.ncentral_ticket_id, as_of)


def ticket_cursor(ticket_id: str) -> str:
    """The cursor of the page after the ticket `ticket_id` (pages go by ncentralTicketId)."""
    return encode_cursor(_KIND, ticket_id)


def cursor_ticket(cursor: str) -> str:
    """The ncentralTicketId a ticket cursor stopped at."""
    return decode_cursor(cursor, _KIND)


def _select(db: sqlite3.Connection, where: TicketFilter, after: str, limit: int) -> list[Ticket]:
    return stored.select(
        db,
        after=after,
        limit=limit,
        state=where.state,
        updated_since=where.updated_since,
        tags=where.tags,
    )


def _replayed(
    db: sqlite3.Connection, where: TicketFilter, after: str, limit: int, as_of: int
) -> list[Ticket]:
    """Filtered on what the fold keeps; only the page's tickets are built."""
    replayed = rewind(db, as_of)
    chosen = sorted(
        ticket_id
        for ticket_id, record in replayed.records.items()
        if ticket_id > after and _matches(record, where)
    )
    return [replayed.ticket(ticket_id) for ticket_id in chosen[:limit]]


def _matches(record: Record, where: TicketFilter) -> bool:
    return (
        (where.state is None or record.state == where.state)
        and (where.updated_since is None or record.updated_at >= where.updated_since)
        and all(record.custom_tags.get(key) == value for key, value in where.tags)
    )


_KIND = "t"

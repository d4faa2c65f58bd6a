"""Tickets for the API: now from the `tickets` projection, or at a moment by replay.

Pages are ordered by ncentralTicketId, which never changes, so a ticket that is updated
while someone pages does not jump to another page. Each filter is an index: state by
`tickets_by_state_id`, tags through the trigger-kept `ticket_tags` table.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3

import msgspec

from service.audit.events import BadCursor
from service.audit.replay import state_at, ticket_at
from service.storage import sqlite as store
from statemachine.projection import Ticket

__all__ = [
    "TicketFilter",
    "TicketPage",
    "decode_ticket_cursor",
    "find_ticket",
    "list_tickets",
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
    after = decode_ticket_cursor(cursor) if cursor is not None else ""
    if as_of is None:
        found = _select(db, where, after, limit + 1)
    else:
        found = _replayed(db, where, after, limit + 1, as_of)
    page = found[:limit]
    more = len(found) > limit
    return TicketPage(page, _encode(page[-1].ncentral_ticket_id) if more else None)


def find_ticket(
    db: sqlite3.Connection, external_ticket_id: str, *, as_of: int | None = None
) -> Ticket | None:
    """The ticket known to N-central as `external_ticket_id`; None if it did not exist then."""
    row = db.execute(
        f"SELECT {', '.join(store.TICKET_COLUMNS)} FROM tickets WHERE external_ticket_id = ?",
        (external_ticket_id,),
    ).fetchone()
    if row is None:
        return None
    if as_of is None:
        return store.stream_from_row(tuple(row)).ticket
    # Tickets are never removed, so one that existed then is in the table now.
    return ticket_at(db, row[0], as_of)


def decode_ticket_cursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise BadCursor("not a cursor this service handed out") from None
    kind, _, ticket_id = text.partition(":")
    if kind != "t":
        raise BadCursor("not a ticket cursor")
    return ticket_id


def _select(db: sqlite3.Connection, where: TicketFilter, after: str, limit: int) -> list[Ticket]:
    clauses = ["ncentral_ticket_id > ?"]
    params: list[object] = [after]
    if where.state is not None:
        clauses.append("state = ?")
        params.append(where.state)
    if where.updated_since is not None:
        clauses.append("updated_at >= ?")
        params.append(where.updated_since)
    for key, value in where.tags:
        clauses.append(
            "ncentral_ticket_id IN (SELECT ncentral_ticket_id FROM ticket_tags"
            " WHERE key = ? AND value = ?)"
        )
        params += [key, value]
    rows = db.execute(
        f"SELECT {', '.join(store.TICKET_COLUMNS)} FROM tickets WHERE {' AND '.join(clauses)}"
        " ORDER BY ncentral_ticket_id LIMIT ?",
        [*params, limit],
    )
    return [t for row in rows if (t := store.stream_from_row(tuple(row)).ticket) is not None]


def _replayed(
    db: sqlite3.Connection, where: TicketFilter, after: str, limit: int, as_of: int
) -> list[Ticket]:
    tickets = state_at(db, as_of)
    chosen = [
        ticket
        for ticket_id, ticket in sorted(tickets.items())
        if ticket_id > after and _matches(ticket, where)
    ]
    return chosen[:limit]


def _matches(ticket: Ticket, where: TicketFilter) -> bool:
    return (
        (where.state is None or ticket.state == where.state)
        and (where.updated_since is None or ticket.updated_at >= where.updated_since)
        and all(ticket.custom_tags.get(key) == value for key, value in where.tags)
    )


def _encode(ticket_id: str) -> str:
    return base64.urlsafe_b64encode(f"t:{ticket_id}".encode()).decode().rstrip("=")

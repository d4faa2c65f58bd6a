"""Reads of the `tickets` projection and its `ticket_tags` index."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from service.storage.dialects import portable
from service.storage.events import EVERY_TICKET, TicketRange
from service.storage.rows import TICKET_COLUMNS, ticket_from_row
from service.storage.sqlite import plain_cursor
from statemachine.projection import Ticket

__all__ = ["by_external_id", "names", "rows_by_ticket", "rows_of", "select"]


@portable
def by_external_id(db: sqlite3.Connection, external_ticket_id: str) -> Ticket | None:
    row = db.execute(_BY_EXTERNAL_ID, (external_ticket_id,)).fetchone()
    return None if row is None else ticket_from_row(row)


@portable
def select(
    db: sqlite3.Connection,
    *,
    after: str,
    limit: int,
    state: str | None = None,
    updated_since: str | None = None,
    tags: tuple[tuple[str, str], ...] = (),
) -> list[Ticket]:
    """Up to `limit` tickets after the ncentralTicketId `after`, in that order, filtered.

    A ticket must carry every (key, value) of `tags`; each is a `ticket_tags` index lookup.
    """
    clauses = ["ncentral_ticket_id > ?"]
    params: list[object] = [after]
    if state is not None:
        clauses.append("state = ?")
        params.append(state)
    if updated_since is not None:
        clauses.append("updated_at >= ?")
        params.append(updated_since)
    for key, value in tags:
        clauses.append(
            "ncentral_ticket_id IN (SELECT ncentral_ticket_id FROM ticket_tags"
            " WHERE key = ? AND value = ?)"
        )
        params += [key, value]
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM tickets WHERE {' AND '.join(clauses)}"
        " ORDER BY ncentral_ticket_id LIMIT ?",
        [*params, limit],
    )
    return [ticket_from_row(row) for row in rows]


@portable
def rows_by_ticket(
    db: sqlite3.Connection, tickets: TicketRange = EVERY_TICKET
) -> dict[str, tuple[Any, ...]]:
    """Every `tickets` row of `tickets` as plain values in `TICKET_COLUMNS` order, by
    ncentralTicketId.

    Plain values, so that they compare equal to `rows.ticket_row` of the replayed stream.
    """
    cursor = plain_cursor(db)
    sql = f"{_ROWS} WHERE 1"
    params: tuple[str, ...] = ()
    if tickets.low is not None:
        sql, params = sql + " AND ncentral_ticket_id >= ?", (*params, tickets.low)
    if tickets.high is not None:
        sql, params = sql + " AND ncentral_ticket_id < ?", (*params, tickets.high)
    return {row[0]: row for row in cursor.execute(sql, params)}


@portable
def rows_of(db: sqlite3.Connection, ticket_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """The `tickets` rows of `ticket_ids` (those there are), as `rows_by_ticket` gives them."""
    return {row[0]: row for row in _of_ids(db, _ROWS, ticket_ids)}


_COLUMNS = ", ".join(TICKET_COLUMNS)
_ROWS = f"SELECT {_COLUMNS} FROM tickets"
#: Ids bound in one `IN (...)`: well under SQLite's limit on parameters (32,766).
_IDS_A_STATEMENT = 500
_BY_EXTERNAL_ID = f"{_ROWS} WHERE external_ticket_id = ?"
_NAMES = "SELECT ncentral_ticket_id, external_ticket_id, title FROM tickets"


@portable
def names(db: sqlite3.Connection, ticket_ids: list[str]) -> dict[str, tuple[str, str]]:
    """(externalTicketId, title) of each ticket in `ticket_ids`, by ncentralTicketId."""
    rows = _of_ids(db, _NAMES, ticket_ids)
    return {ticket_id: (external, title) for ticket_id, external, title in rows}


def _of_ids(db: sqlite3.Connection, select: str, ticket_ids: list[str]) -> Iterator[Any]:
    """The rows `select` reads of the tickets `ticket_ids`, as plain tuples, a statement
    for each `_IDS_A_STATEMENT` of them."""
    cursor = plain_cursor(db)
    for start in range(0, len(ticket_ids), _IDS_A_STATEMENT):
        chunk = ticket_ids[start : start + _IDS_A_STATEMENT]
        marks = ", ".join("?" * len(chunk))
        yield from cursor.execute(f"{select} WHERE ncentral_ticket_id IN ({marks})", chunk)

"""Reads of the `tickets` projection and its `ticket_tags` index, on PostgreSQL.

N-central's text comes back as it was sent: stored shielded (`nul`), read restored.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import tuple_row

from service.storage.events import EVERY_TICKET, TicketRange
from service.storage.postgres.connections import Connection
from service.storage.postgres.nul import holds_nul, shield, unshield, unshield_tags
from service.storage.rows import TICKET_COLUMNS, ticket_from_row
from statemachine.projection import Ticket

__all__ = [
    "by_external_id",
    "names",
    "restored",
    "rows_by_ticket",
    "rows_of",
    "select",
]


def by_external_id(db: Connection, external_ticket_id: str) -> Ticket | None:
    if holds_nul(external_ticket_id):
        return None
    row = db.execute(_BY_EXTERNAL_ID, (external_ticket_id,)).fetchone()
    return None if row is None else ticket_from_row(restored(row))


def select(
    db: Connection,
    *,
    after: str,
    limit: int,
    state: str | None = None,
    updated_since: str | None = None,
    tags: tuple[tuple[str, str], ...] = (),
) -> list[Ticket]:
    """Up to `limit` tickets after the ncentralTicketId `after`, in that order, filtered."""
    if holds_nul(state, updated_since):
        return []
    # No id holds NUL, so the ids after "a\0..." are exactly the ids after "a".
    clauses = ["ncentral_ticket_id > %s"]
    params: list[object] = [after.partition("\x00")[0]]
    if state is not None:
        clauses.append("state = %s")
        params.append(state)
    if updated_since is not None:
        clauses.append("updated_at >= %s")
        params.append(updated_since)
    for key, value in tags:
        clauses.append(
            "ncentral_ticket_id IN (SELECT ncentral_ticket_id FROM ticket_tags"
            " WHERE key = %s AND value = %s)"
        )
        params += [shield(key), shield(value)]
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM tickets WHERE {' AND '.join(clauses)}"
        " ORDER BY ncentral_ticket_id LIMIT %s",
        [*params, limit],
    )
    return [ticket_from_row(restored(row)) for row in rows]


def rows_by_ticket(
    db: Connection, tickets: TicketRange = EVERY_TICKET
) -> dict[str, tuple[Any, ...]]:
    """Every `tickets` row of `tickets` in `TICKET_COLUMNS` order, as `rows.ticket_row`
    gives it.

    The server keeps to the range (ids compared byte by byte, as Python compares them), so
    each of `verify`'s workers receives its own part of the table, not all of it."""
    clauses, params = ["true"], []
    if tickets.low is not None:
        clauses.append('ncentral_ticket_id COLLATE "C" >= %s')
        params.append(tickets.low)
    if tickets.high is not None:
        clauses.append('ncentral_ticket_id COLLATE "C" < %s')
        params.append(tickets.high)
    return _plain_rows(db, f"{_ROWS} WHERE {' AND '.join(clauses)}", params)


def rows_of(db: Connection, ticket_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """The `tickets` rows of `ticket_ids` (those there are), as `rows_by_ticket` gives them."""
    return _plain_rows(db, f"{_ROWS} WHERE ncentral_ticket_id = ANY(%s)", [ticket_ids])


def names(db: Connection, ticket_ids: list[str]) -> dict[str, tuple[str, str]]:
    """(externalTicketId, title) of each ticket in `ticket_ids`, by ncentralTicketId."""
    rows = db.execute(_NAMES, (ticket_ids,))
    return {
        row["ncentral_ticket_id"]: (row["external_ticket_id"], unshield(row["title"]))
        for row in rows
    }


def restored(row: dict[str, Any]) -> dict[str, Any]:
    """A `tickets` row with N-central's text as it was sent (see `nul`)."""
    for name in ("title", "details"):
        row[name] = unshield(row[name])
    row["custom_tags"] = unshield_tags(row["custom_tags"])
    return row


def _plain_rows(db: Connection, sql: str, params: list[Any]) -> dict[str, tuple[Any, ...]]:
    """Rows of `sql` (the `tickets` columns in order) as `rows.ticket_row` makes them: as
    tuples, in binary, N-central's text restored and the JSON columns as bytes."""
    found = {}
    for row in db.cursor(row_factory=tuple_row).execute(sql, params, binary=True):
        ticket_id, external, state, title, details, tags, *as_stored, accepted = row
        found[ticket_id] = (
            ticket_id,
            external,
            state,
            unshield(title),
            unshield(details),
            unshield_tags(tags).encode(),
            *as_stored,
            None if accepted is None else accepted.encode(),
        )
    return found


_COLUMNS = ", ".join(TICKET_COLUMNS)
_ROWS = f"SELECT {_COLUMNS} FROM tickets"
_NAMES = (
    "SELECT ncentral_ticket_id, external_ticket_id, title FROM tickets"
    " WHERE ncentral_ticket_id = ANY(%s)"
)
_BY_EXTERNAL_ID = f"{_ROWS} WHERE external_ticket_id = %s"

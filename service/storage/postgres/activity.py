"""The console's front page on PostgreSQL: `service.storage.activity`, statement for statement.

PostgreSQL's tables have no rowid, so the keyset's second half is `last_position`: the
position of a ticket's last event, unique to it and ordered like its activity.
"""

from __future__ import annotations

from typing import Any

from service.storage.activity import ActivityRow
from service.storage.postgres.connections import Connection
from service.storage.postgres.nul import holds_nul, shield, unshield

__all__ = ["explain_recent", "head_position", "recent", "state_counts"]


def recent(
    db: Connection,
    *,
    limit: int,
    before: tuple[str, int] | None = None,
    state: str | None = None,
    tags: tuple[tuple[str, str], ...] = (),
    ncentral_ticket_id: str | None = None,
    text: str | None = None,
    among: list[str] | None = None,
) -> list[ActivityRow]:
    """Up to `limit` tickets, newest activity first, after the keyset `before` when given;
    only tickets of `among` (looked up by key) when given."""
    if holds_nul(state, ncentral_ticket_id, *(before or ())):
        return []
    sql, params = _recent(limit, before, state, tags, ncentral_ticket_id, text, among)
    return [_activity(row) for row in db.execute(sql, params)]


def explain_recent(db: Connection, **where: Any) -> list[str]:
    """PostgreSQL's plan for `recent`, a line a node."""
    sql, params = _recent(50, ("9999", 2**62), **where)
    return [next(iter(row.values())) for row in db.execute("EXPLAIN " + sql, params)]


def state_counts(db: Connection) -> dict[str, int]:
    rows = db.execute("SELECT state, COUNT(*) AS n FROM tickets GROUP BY state")
    return {row["state"]: int(row["n"]) for row in rows}


def head_position(db: Connection) -> int:
    row = db.execute("SELECT COALESCE(MAX(position), 0) AS n FROM events").fetchone()
    return int(row["n"]) if row is not None else 0


def _activity(row: dict[str, Any]) -> ActivityRow:
    return ActivityRow(**{**row, "title": unshield(row["title"])})


def _recent(
    limit: int,
    before: tuple[str, int] | None,
    state: str | None = None,
    tags: tuple[tuple[str, str], ...] = (),
    ncentral_ticket_id: str | None = None,
    text: str | None = None,
    among: list[str] | None = None,
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if among is not None:
        clauses.append("t.ncentral_ticket_id = ANY(%s)")
        params.append(among)
    if before is not None:
        clauses.append("(t.updated_at, t.last_position) < (%s, %s)")
        params += list(before)
    if state is not None:
        clauses.append("t.state = %s")
        params.append(state)
    if ncentral_ticket_id is not None:
        clauses.append("t.ncentral_ticket_id = %s")
        params.append(ncentral_ticket_id)
    for key, value in tags:
        clauses.append(
            "t.ncentral_ticket_id IN (SELECT ncentral_ticket_id FROM ticket_tags"
            " WHERE key = %s AND value = %s)"
        )
        params += [shield(key), shield(value)]
    if text is not None:
        # strpos, not LIKE: `%` and `_` in what the operator typed are plain characters.
        clauses.append("(strpos(lower(t.title), %s) > 0 OR strpos(lower(t.details), %s) > 0)")
        params += [shield(text.lower()), shield(text.lower())]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    if among is not None:
        # Every candidate's row is read for the predicate; only the page's are joined.
        where = (
            "WHERE t.ncentral_ticket_id IN (SELECT t.ncentral_ticket_id FROM tickets AS t"
            f" {where} ORDER BY t.updated_at DESC, t.last_position DESC LIMIT %s)"
        )
        params.append(limit)
    sql = (
        f"SELECT {_COLUMNS}, t.last_position AS rowid, e.action AS last_action,"
        " e.outcome AS last_outcome, c.status AS callback"
        " FROM tickets AS t"
        " LEFT JOIN events AS e ON e.position = t.last_position"
        " LEFT JOIN callbacks AS c ON c.ncentral_ticket_id = t.ncentral_ticket_id"
        " AND c.status IN ('pending', 'dead')"
        f" {where} ORDER BY t.updated_at DESC, t.last_position DESC LIMIT %s"
    )
    return sql, [*params, limit]


#: ActivityRow's ticket columns (the same names).
_COLUMNS = (
    "t.ncentral_ticket_id, t.external_ticket_id, t.title, t.state, t.created_at, t.updated_at"
)

"""Reads for the console's front page: tickets by latest activity, and counts by state.

Tickets come newest activity first (`updated_at` descending), paged by a keyset on
(`updated_at`, rowid) so that `tickets_by_update` or `tickets_by_state` gives the order
without sorting; each row brings its last event and its outstanding callback by primary
key. Counting by state reads the `tickets_by_state` index, never the rows.

A tag filter has two plans, chosen by a bounded look at the tag index. A tag on many
tickets: walk the activity order and look each ticket's tag up by primary key (a page
is found after a few hundred). A tag on few: start from those tickets (`ticket_tags_by_tag`)
and sort at most `_FEW_TAGGED` of them, instead of walking every ticket to find a page.

A text filter may be handed the tickets that can match (`among`, the text index's
candidates, `storage.textindex`): those are looked up by key, checked with the filter's
own predicate, and only the page's keys sorted before its rows are joined.
"""

from __future__ import annotations

import json
import sqlite3

import msgspec

from service.storage.dialects import portable
from service.storage.sqlite import plain_cursor

__all__ = ["ActivityRow", "explain_recent", "head_position", "recent", "state_counts"]


class ActivityRow(msgspec.Struct, frozen=True):
    """One ticket as the list shows it, with what happened to it last: only the columns
    the list shows (no details, tags or last payload to read and decode)."""

    ncentral_ticket_id: str
    external_ticket_id: str
    title: str
    state: str
    created_at: str
    #: With `rowid`, where the next page starts: the keyset of this row.
    updated_at: str
    rowid: int
    last_action: str | None
    last_outcome: str | None
    #: `pending` or `dead` when a callback to N-central is still owed.
    callback: str | None


@portable
def recent(
    db: sqlite3.Connection,
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
    rare = None if among is not None else _rare(db, tags)
    sql, params = _recent(limit, before, state, tags, ncentral_ticket_id, text, rare, among)
    cursor = plain_cursor(db)
    return [ActivityRow(*row) for row in cursor.execute(sql, params)]


@portable
def explain_recent(db: sqlite3.Connection, **where: object) -> list[str]:
    """SQLite's plan for `recent`: the proof that the order comes from an index."""
    rare = None if "among" in where else _rare(db, where.get("tags", ()))  # type: ignore[arg-type]
    sql, params = _recent(50, ("9999", 2**62), **where, rare=rare)  # type: ignore[arg-type]
    return [row["detail"] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]


@portable
def state_counts(db: sqlite3.Connection) -> dict[str, int]:
    """How many tickets are in each state (covering-index reads only)."""
    rows = db.execute("SELECT state, COUNT(*) AS n FROM tickets GROUP BY state")
    return {row["state"]: int(row["n"]) for row in rows}


@portable
def head_position(db: sqlite3.Connection) -> int:
    """The log's last position (0 when empty): the end of the primary key."""
    return int(db.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])


def _rare(db: sqlite3.Connection, tags: tuple[tuple[str, str], ...]) -> tuple[str, str] | None:
    """The first of `tags` on fewer than `_FEW_TAGGED` tickets (counted no further), if any."""
    for key, value in tags:
        if db.execute(_FEW, (key, value, _FEW_TAGGED)).fetchone()[0] < _FEW_TAGGED:
            return key, value
    return None


def _recent(
    limit: int,
    before: tuple[str, int] | None,
    state: str | None = None,
    tags: tuple[tuple[str, str], ...] = (),
    ncentral_ticket_id: str | None = None,
    text: str | None = None,
    rare: tuple[str, str] | None = None,
    among: list[str] | None = None,
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    source = "tickets AS t"
    if among is not None:
        clauses.append("t.ncentral_ticket_id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(among))
    if rare is not None:
        source = "ticket_tags AS g JOIN tickets AS t ON t.ncentral_ticket_id = g.ncentral_ticket_id"
        clauses.append("g.key = ? AND g.value = ?")
        params += list(rare)
    if before is not None:
        clauses.append("(t.updated_at, t.rowid) < (?, ?)")
        params += list(before)
    if state is not None:
        clauses.append("t.state = ?")
        params.append(state)
    if ncentral_ticket_id is not None:
        clauses.append("t.ncentral_ticket_id = ?")
        params.append(ncentral_ticket_id)
    for key, value in tags:
        if (key, value) == rare:
            continue
        clauses.append(
            "EXISTS (SELECT 1 FROM ticket_tags AS o WHERE o.ncentral_ticket_id"
            " = t.ncentral_ticket_id AND o.key = ? AND o.value = ?)"
        )
        params += [key, value]
    if text is not None:
        # instr, not LIKE: `%` and `_` in what the operator typed are plain characters.
        clauses.append("(instr(lower(t.title), ?) > 0 OR instr(lower(t.details), ?) > 0)")
        params += [text.lower(), text.lower()]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    if among is not None:
        # Every candidate's row is read for the predicate; only the page's are joined.
        where = (
            f"WHERE t.rowid IN (SELECT t.rowid FROM tickets AS t {where}"
            " ORDER BY t.updated_at DESC, t.rowid DESC LIMIT ?)"
        )
        params.append(limit)
    sql = (
        f"SELECT {_COLUMNS}, t.rowid, e.action, e.outcome, c.status"
        f" FROM {source}"
        " LEFT JOIN events AS e ON e.position = t.last_position"
        " LEFT JOIN callbacks AS c ON c.ncentral_ticket_id = t.ncentral_ticket_id"
        " AND c.status IN ('pending', 'dead')"
        f" {where} ORDER BY t.updated_at DESC, t.rowid DESC LIMIT ?"
    )
    return sql, [*params, limit]


#: ActivityRow's ticket columns, in its order.
_COLUMNS = (
    "t.ncentral_ticket_id, t.external_ticket_id, t.title, t.state, t.created_at, t.updated_at"
)
#: Up to this many tickets with a tag, the page starts from them and sorts them.
_FEW_TAGGED = 2000
_FEW = "SELECT COUNT(*) FROM (SELECT 1 FROM ticket_tags WHERE key = ? AND value = ? LIMIT ?)"

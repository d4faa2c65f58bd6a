"""An incident window's reads on PostgreSQL: `service.storage.window`, statement for statement."""

from __future__ import annotations

from collections.abc import Iterator

from service.storage.postgres.connections import Connection
from service.storage.window import Mark

__all__ = [
    "explain_marks",
    "explain_net_entered",
    "marks",
    "net_entered",
    "stream_step",
    "version_at",
]


def marks(db: Connection, low: int, high: int, *, chunk: int = 5000) -> Iterator[Mark]:
    """Every event at positions `low..high`, in log order, a chunk at a time."""
    while low <= high:
        rows = db.execute(_MARKS, (low, high, chunk)).fetchall()
        for row in rows:
            yield Mark(*row.values())
        if len(rows) < chunk:
            return
        low = rows[-1]["position"] + 1


def net_entered(db: Connection, low: int, high: int, states: frozenset[str]) -> int:
    """How many more tickets are in `states` after the events at `low..high` than before."""
    wanted = sorted(states)
    row = db.execute(_NET_ENTERED, (wanted, wanted, low, high)).fetchone()
    return int(row["n"] or 0) if row is not None else 0


def version_at(db: Connection, ticket_id: str, position: int) -> int:
    """How many of one ticket's events the log held at `position` (its stream version then)."""
    row = db.execute(_VERSION_AT, (ticket_id, position)).fetchone()
    return int(row["stream_version"] or 0) if row is not None else 0


def stream_step(db: Connection, ticket_id: str, version: int) -> int | None:
    """The position of one ticket's `version`-th event; None when it has no such event."""
    row = db.execute(_STEP, (ticket_id, version)).fetchone()
    return None if row is None else int(row["position"])


def explain_marks(db: Connection) -> list[str]:
    return _plan(db, _MARKS, (1, 2, 3))


def explain_net_entered(db: Connection) -> list[str]:
    return _plan(db, _NET_ENTERED, (["open"], ["open"], 1, 2))


def _plan(db: Connection, sql: str, params: tuple[object, ...]) -> list[str]:
    return [next(iter(row.values())) for row in db.execute("EXPLAIN " + sql, params)]


_MARKS = (
    "SELECT position, recorded_at, ticket_id, action, outcome, state_before, state_after"
    " FROM events WHERE position BETWEEN %s AND %s ORDER BY position LIMIT %s"
)
# A NULL state counts neither way, as on SQLite (NULL IN ... is NULL, and SUM skips it).
_NET_ENTERED = (
    "SELECT SUM((state_after = ANY(%s))::int - (state_before = ANY(%s))::int) AS n"
    " FROM events WHERE position BETWEEN %s AND %s"
)
_VERSION_AT = (
    "SELECT stream_version FROM events WHERE ticket_id = %s AND position <= %s"
    " ORDER BY position DESC LIMIT 1"
)
_STEP = "SELECT position FROM events WHERE ticket_id = %s AND stream_version = %s"

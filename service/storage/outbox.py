"""The `callbacks` table: the statements ledger commands queue, and the reads of the worker,
the shell and the API.

Writes are returned as `(name, parameters)` for `Batch.execute`, so they run inside the
writer's transaction with the event that explains them; the writer finds the statement by
its name in its backend's `STATEMENTS` (here SQLite's, PostgreSQL's in `postgres.outbox`).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiosqlite

from service.storage.dialects import portable

__all__ = [
    "CALLBACK_COLUMNS",
    "STATEMENTS",
    "Statement",
    "claim",
    "claimed",
    "count_by_status",
    "insert",
    "listed",
    "next_due",
    "one",
    "retry",
    "settle",
]

#: A write: the name of a statement in `STATEMENTS`, and its parameters.
Statement = tuple[str, tuple[Any, ...]]

CALLBACK_COLUMNS = (
    "ncentral_ticket_id",
    "external_ticket_id",
    "ticket_url",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "updated_at",
)


def insert(
    ticket_id: str, external_ticket_id: str, ticket_url: str, *, position: int, at: str
) -> Statement:
    """A pending row, due at once; a second CREATE of the same ticket changes nothing."""
    return "insert", (ticket_id, external_ticket_id, ticket_url, at, position, at, at)


def claim(token: str, *, now: str, lease_until: str, limit: int) -> Statement:
    """Lease up to `limit` due rows (pending, time come, no live lease) to `token`."""
    return "claim", (token, lease_until, now, now, limit)


def settle(
    ticket_id: str,
    *,
    status: str,
    next_attempt_at: str | None,
    last_error: str | None,
    attempts: int,
    at: str,
) -> Statement:
    """A try's result on the row, and its lease released."""
    return "settle", (status, next_attempt_at, last_error, attempts, at, ticket_id)


def retry(ticket_id: str, *, at: str) -> Statement:
    """A fresh round of tries, due at `at`; a delivered row stays delivered."""
    return "retry", (at, at, ticket_id)


@portable
def listed(db: sqlite3.Connection, status: str | None) -> list[sqlite3.Row]:
    """Rows not yet delivered (or only those in `status`), dead letters first."""
    return db.execute(_LISTED, (status, status)).fetchall()


@portable
def one(db: sqlite3.Connection, ticket_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(_ONE, (ticket_id,)).fetchone()
    return row


@portable
def count_by_status(db: sqlite3.Connection) -> dict[str, int]:
    return {row["status"]: row["n"] for row in db.execute(_COUNT_BY_STATUS)}


@portable
async def claimed(db: aiosqlite.Connection, token: str) -> list[sqlite3.Row]:
    return list(await db.execute_fetchall(_CLAIMED, (token,)))


@portable
async def next_due(db: aiosqlite.Connection) -> str | None:
    """The earliest moment any pending row can next be claimed (its time, or its lease's end)."""
    rows = list(await db.execute_fetchall(_NEXT_DUE))
    return rows[0][0] if rows else None


_SELECT = f"SELECT {', '.join(CALLBACK_COLUMNS)} FROM callbacks"
_LISTED = (
    f"{_SELECT} WHERE status != 'delivered' AND (? IS NULL OR status = ?)"
    " ORDER BY status, next_attempt_at, ncentral_ticket_id"
)
_ONE = f"{_SELECT} WHERE ncentral_ticket_id = ?"
_CLAIMED = f"{_SELECT} WHERE claim = ?"
_NEXT_DUE = (
    "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until, ''))) FROM callbacks"
    " WHERE status = 'pending'"
)
_COUNT_BY_STATUS = "SELECT status, COUNT(*) AS n FROM callbacks GROUP BY status"
_INSERT = (
    "INSERT OR IGNORE INTO callbacks (ncentral_ticket_id, external_ticket_id, ticket_url,"
    " status, attempts, next_attempt_at, create_position, created_at, updated_at)"
    " VALUES (?, ?, ?, 'pending', 0, ?, ?, ?, ?)"
)
_CLAIM = (
    "UPDATE callbacks SET claim = ?, lease_until = ? WHERE ncentral_ticket_id IN ("
    " SELECT ncentral_ticket_id FROM callbacks WHERE status = 'pending'"
    " AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)"
    " ORDER BY next_attempt_at LIMIT ?)"
)
_SETTLE = (
    "UPDATE callbacks SET status = ?, next_attempt_at = ?, last_error = ?, attempts = ?,"
    " updated_at = ?, claim = NULL, lease_until = NULL WHERE ncentral_ticket_id = ?"
)
_RETRY = (
    "UPDATE callbacks SET status = 'pending', attempts = 0, next_attempt_at = ?,"
    " updated_at = ? WHERE ncentral_ticket_id = ? AND status != 'delivered'"
)

STATEMENTS = {"insert": _INSERT, "claim": _CLAIM, "settle": _SETTLE, "retry": _RETRY}

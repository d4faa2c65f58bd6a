"""The `callbacks` table on PostgreSQL: `service.storage.outbox`'s statements and reads.

The writes are the same named statements (`STATEMENTS`), run by the writer inside its
batch's transaction under the append lock, so a lease (`claim`) taken by one replica is
committed before any other replica's batch can look for due rows: every owed callback is
leased to exactly one courier. `WAKES` names the statements that can make a row due now;
a batch holding one notifies `CHANNEL` in its transaction, which PostgreSQL delivers to
every replica's listening courier only if, and once, the batch commits.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import DictRow

from service.storage.outbox import CALLBACK_COLUMNS
from service.storage.postgres.connections import AsyncConnection, Connection
from service.storage.postgres.nul import holds_nul

__all__ = [
    "CHANNEL",
    "STATEMENTS",
    "WAKES",
    "claimed",
    "count_by_status",
    "listed",
    "next_due",
    "one",
]

CHANNEL = "psa_ledger_callbacks"


def listed(db: Connection, status: str | None) -> list[DictRow]:
    return db.execute(_LISTED, (status, status)).fetchall()


def one(db: Connection, ticket_id: str) -> DictRow | None:
    if holds_nul(ticket_id):
        return None
    return db.execute(_ONE, (ticket_id,)).fetchone()


def count_by_status(db: Connection) -> dict[str, int]:
    return {row["status"]: row["n"] for row in db.execute(_COUNT_BY_STATUS)}


async def claimed(db: AsyncConnection, token: str) -> list[DictRow]:
    return await (await db.execute(_CLAIMED, (token,))).fetchall()


async def next_due(db: AsyncConnection) -> str | None:
    row: Any = await (await db.execute(_NEXT_DUE)).fetchone()
    return None if row is None else row["due"]


_SELECT = f"SELECT {', '.join(CALLBACK_COLUMNS)} FROM callbacks"
_LISTED = (
    f"{_SELECT} WHERE status <> 'delivered' AND (%s::text IS NULL OR status = %s)"
    " ORDER BY status, next_attempt_at, ncentral_ticket_id"
)
_ONE = f"{_SELECT} WHERE ncentral_ticket_id = %s"
_CLAIMED = f"{_SELECT} WHERE claim = %s"
_NEXT_DUE = (
    "SELECT MIN(GREATEST(next_attempt_at, COALESCE(lease_until, ''))) AS due FROM callbacks"
    " WHERE status = 'pending'"
)
_COUNT_BY_STATUS = "SELECT status, COUNT(*) AS n FROM callbacks GROUP BY status"

STATEMENTS = {
    "insert": (
        "INSERT INTO callbacks (ncentral_ticket_id, external_ticket_id, ticket_url,"
        " status, attempts, next_attempt_at, create_position, created_at, updated_at)"
        " VALUES (%s, %s, %s, 'pending', 0, %s, %s, %s, %s)"
        " ON CONFLICT (ncentral_ticket_id) DO NOTHING"
    ),
    "claim": (
        "UPDATE callbacks SET claim = %s, lease_until = %s WHERE ncentral_ticket_id IN ("
        " SELECT ncentral_ticket_id FROM callbacks WHERE status = 'pending'"
        " AND next_attempt_at <= %s AND (lease_until IS NULL OR lease_until <= %s)"
        " ORDER BY next_attempt_at LIMIT %s)"
    ),
    "settle": (
        "UPDATE callbacks SET status = %s, next_attempt_at = %s, last_error = %s,"
        " attempts = %s, updated_at = %s, claim = NULL, lease_until = NULL"
        " WHERE ncentral_ticket_id = %s"
    ),
    "retry": (
        "UPDATE callbacks SET status = 'pending', attempts = 0, next_attempt_at = %s,"
        " updated_at = %s WHERE ncentral_ticket_id = %s AND status <> 'delivered'"
    ),
}
WAKES = frozenset({"insert", "retry"})

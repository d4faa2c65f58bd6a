"""What the single writer writes, and what it reads back before deciding a batch.

A batch's writes are queued on the writer's connection together (see
`service.ledger.writer`), so these are statements and parameters, not calls that wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, NamedTuple

import aiosqlite

from service.storage.rows import EVENT_COLUMNS, STREAM_COLUMNS, TICKET_COLUMNS

__all__ = ["INSERT_EVENT", "UPSERT_TICKET", "Loaded", "load"]

_CONTENT_COLUMNS = ("title", "details", "custom_tags")

INSERT_EVENT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
)
# A whole row, replaced (so the tags trigger, AFTER INSERT, follows it); a content column
# given as NULL keeps the stored value, read in the same statement.
UPSERT_TICKET = (
    f"INSERT OR REPLACE INTO tickets ({', '.join(TICKET_COLUMNS)}) SELECT "
    + ", ".join(
        f"COALESCE(?{n}, stored.{name})" if name in _CONTENT_COLUMNS else f"?{n}"
        for n, name in enumerate(TICKET_COLUMNS, start=1)
    )
    + " FROM (SELECT ?1 AS id) AS incoming"
    " LEFT JOIN tickets AS stored ON stored.ncentral_ticket_id = incoming.id"
)


class Loaded(NamedTuple):
    """Rows read for a batch: the log's tail (None when not asked or empty), tickets, versions."""

    tail: Any | None
    tickets: list[Any]
    versions: dict[str, int]


async def load(db: aiosqlite.Connection, ticket_ids: Iterable[str], *, with_tail: bool) -> Loaded:
    """The standing (`STREAM_COLUMNS`) and last stream version of `ticket_ids`; the tail if asked.

    Queued as one round trip. The tail row has `position`, `hash` and `recorded_at`, or is
    None on an empty log. A ticket with events but no `tickets` row (only refusals so far)
    still has a version.
    """
    ids = sorted(ticket_ids)
    marks = ", ".join("?" for _ in ids)
    queries = [
        db.execute_fetchall(
            f"SELECT {', '.join(STREAM_COLUMNS)} FROM tickets"
            f" WHERE ncentral_ticket_id IN ({marks})",
            ids,
        ),
        db.execute_fetchall(
            "SELECT ticket_id, MAX(stream_version) AS version FROM events"
            f" WHERE ticket_id IN ({marks}) GROUP BY ticket_id",
            ids,
        ),
    ]
    if with_tail:
        queries.append(db.execute_fetchall(_SELECT_TAIL))
    tickets, versions, *tail_rows = await asyncio.gather(*queries)
    tail = None
    if with_tail:
        rows = list(tail_rows[0])
        tail = rows[0] if rows else None
    return Loaded(tail, list(tickets), {row["ticket_id"]: row["version"] for row in versions})


_SELECT_TAIL = "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"

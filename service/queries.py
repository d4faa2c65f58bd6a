"""Reads for the operator API and pages, on a connection of their own.

WAL lets these run while the writer commits; they never see half a batch.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from service import store
from statemachine.projection import Ticket

__all__ = ["Reader"]


class Reader:
    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        self._db = await store.connect(self.path, busy_timeout_ms=self._busy_timeout_ms)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        assert self._db is not None, "Reader.open() was not awaited"
        return self._db

    async def ticket(self, external_ticket_id: str) -> Ticket | None:
        rows = list(
            await self.db.execute_fetchall(
                f"SELECT {', '.join(store.TICKET_COLUMNS)} FROM tickets"
                " WHERE external_ticket_id = ?",
                (external_ticket_id,),
            )
        )
        return store.stream_from_row(tuple(rows[0])).ticket if rows else None

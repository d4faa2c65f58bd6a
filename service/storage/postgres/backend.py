"""The PostgreSQL backend (`service.storage.backend` picks it for a `postgresql://` URL).

A module of its own, loaded only for a URL, so that a process on a SQLite file never
imports psycopg.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from service.storage.backend import Backend
from service.storage.postgres import appends as postgres_appends
from service.storage.postgres import connections as postgres
from service.storage.postgres.outbox import CHANNEL

__all__ = ["PostgresBackend"]

log = logging.getLogger("psa_ledger.storage")


#: How long a writer may sit inside a batch's transaction without a word to the server.
_STALLED_MS = 30_000


class PostgresBackend(Backend):
    name = "postgresql"
    appends = postgres_appends
    errors = (psycopg.Error,)
    unreachable = (psycopg.OperationalError, PoolTimeout)

    def __init__(self, url: str, busy_timeout_ms: int = 5000) -> None:
        self.url = url
        self._busy_timeout_ms = busy_timeout_ms
        self.display = postgres.display(url)
        self._pool: ConnectionPool[postgres.Connection] | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def connect_writer(self) -> Any:
        db = await postgres.connect(self.url, writer=True)
        # Each statement after the append lock must see what the lock's last holder committed.
        await db.set_isolation_level(psycopg.IsolationLevel.READ_COMMITTED)
        # A batch waits for the append lock as SQLite's writer waits for its file lock, then
        # is refused (503); and a replica stalled inside a batch (frozen, cut off) loses its
        # session, and with it the lock, instead of stopping every other replica's writes.
        await db.execute(f"SET lock_timeout = {int(self._busy_timeout_ms)}")
        await db.execute(f"SET idle_in_transaction_session_timeout = {_STALLED_MS}")
        await db.commit()
        return db

    async def connect_reader(self) -> Any:
        return await postgres.connect_readonly(self.url)

    def connect_sync(self, *, readonly: bool = True) -> Any:
        return postgres.connect_sync(self.url, readonly=readonly)

    def snapshot(self, db: Any) -> contextlib.AbstractContextManager[Any]:
        return postgres.snapshot(db)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Any]:
        with self._readers().connection() as db, postgres.snapshot(db):
            yield db

    def close(self) -> None:
        # A connection in use when the pool closes is closed as it comes back.
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None:
            pool.close()

    async def wakeups(self, wake: Callable[[], None]) -> None:
        """LISTEN on a connection of our own (pooled ones are reset); reconnects when lost.

        Not a read-only session: PostgreSQL refuses LISTEN in a read-only transaction.
        """
        while True:
            try:
                async with await postgres.connect_listener(self.url) as db:
                    await db.execute(f"LISTEN {CHANNEL}")
                    wake()  # whatever was notified while we were not listening
                    async for _ in db.notifies():
                        wake()
            except psycopg.Error as exc:
                log.warning("callbacks: not listening for commits (%s); polling meanwhile", exc)
                await asyncio.sleep(1.0)

    def _readers(self) -> ConnectionPool[postgres.Connection]:
        with self._lock:
            if self._closed:
                raise PoolClosed(f"the read side of {self.display} is closed")
            if self._pool is None:
                self._pool = postgres.read_pool(self.url)
            return self._pool

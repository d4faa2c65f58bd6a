"""Read-only connections for the audit API, used from worker threads.

The audit queries are plain synchronous functions shared with the CLI; the API runs them
in a thread with a connection of its own, so one query is one thread hop however many
statements it takes, and the event loop never waits on the database. Each query runs in
one read transaction (a snapshot: WAL's on SQLite, repeatable read on PostgreSQL), so a
page and its time bounds agree even while writers commit.

The threads are the pool's own, not anyio's: its hand-over costs the event loop a
capacity limiter, a cancel scope and a look-up of the running library at every read,
50-80 µs more of its CPU (a console page takes 0.5-2 ms, wrk at one connection). They
take work most recently idle first (`threadpool.MostRecentFirst`), so that one reader at
a time keeps to one warm thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from service.storage import StoreUnavailable
from service.storage.backend import backend_for
from service.storage.threadpool import MostRecentFirst

__all__ = ["ReadPool"]

T = TypeVar("T")
U = TypeVar("U")

#: Reads at once. A read on SQLite is CPU work under the GIL, and one on PostgreSQL waits
#: for one of the read pool's 8 connections: more threads would only queue there.
_THREADS = 16


class ReadPool:
    def __init__(self, db: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.backend = backend_for(db, busy_timeout_ms=busy_timeout_ms)
        self._threads = MostRecentFirst(_THREADS, "psa-ledger-read")

    async def run(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`query(db, *args, **kwargs)` in a worker thread, inside one snapshot.

        A database that cannot be reached is `StoreUnavailable` (503, try again later).
        """
        return await self._in_thread(partial(self._run, query, *args, **kwargs))

    async def run_then(
        self, then: Callable[[T], U], query: Callable[..., T], *args: Any, **kwargs: Any
    ) -> U:
        """`then(query(db, *args, **kwargs))` in one worker thread, `then` after the snapshot.

        For work on what a query made that would be dearer elsewhere: each hand-over to
        another thread costs a wake-up and moves the objects to another core's caches.
        """

        def both() -> U:
            return then(self._run(query, *args, **kwargs))

        return await self._in_thread(both)

    def run_here(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`query(db, *args, **kwargs)` in the calling thread (one of the caller's own)."""
        return self._run(query, *args, **kwargs)

    def close(self) -> None:
        """Let the threads and connections go: reads not yet begun are dropped, and one
        under way closes its connection when it ends (see `backend.close`)."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        self.backend.close()

    async def _in_thread(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def _run(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            with self.backend.reading() as db:
                return query(db, *args, **kwargs)
        except self.backend.unreachable as exc:
            raise StoreUnavailable(f"the log cannot be read now: {exc}") from exc

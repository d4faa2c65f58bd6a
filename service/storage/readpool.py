"""Read-only SQLite connections for the audit API, used from worker threads.

The audit queries are plain synchronous functions shared with the CLI; the API runs them
in a thread with a connection of its own, so one query is one thread hop however many
statements it takes, and the event loop never waits on SQLite. Each query runs in one
read transaction: WAL gives it a snapshot, so a page and its time bounds agree even while
the writer commits.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from service.storage.sqlite import snapshot

__all__ = ["ReadPool"]

T = TypeVar("T")


class ReadPool:
    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    async def run(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`query(db, *args, **kwargs)` in a worker thread, inside one snapshot."""
        return await anyio.to_thread.run_sync(partial(self._run, query, *args, **kwargs))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()

    def _run(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        db = self._take()
        try:
            with snapshot(db):
                return query(db, *args, **kwargs)
        finally:
            with self._lock:
                self._idle.append(db)

    def _take(self) -> sqlite3.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        db = sqlite3.connect(
            f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        return db

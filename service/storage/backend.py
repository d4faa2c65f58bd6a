"""The backend a log lives on, chosen once from `PSA_LEDGER_DB`: a SQLite path or a URL.

`backend_for` reads the setting's scheme (`postgresql://` or `postgres://`, anything else
is a file) and returns the one object the rest of the service asks for connections and
for the writer's statements, so that nothing above `storage` branches on the backend:
the writer takes `appends` and `connect_writer`, the courier `connect_reader` and
`wakeups`, the read side `reading` (one snapshot on a pooled connection), the shell
`connect_sync`. The read queries themselves are `storage.events`, `storage.tickets` and
`storage.outbox`, which follow the connection they are handed (`storage.dialects`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from service.storage import appends as sqlite_appends
from service.storage import sqlite

__all__ = ["Backend", "SqliteBackend", "backend_for", "is_url"]

#: As `service.settings.POSTGRES_SCHEMES` (storage does not read the settings).
_SCHEMES = ("postgresql://", "postgres://")


def is_url(db: str | Path) -> bool:
    """Whether `db` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(db, str) and db.startswith(_SCHEMES)


def backend_for(db: str | Path, *, busy_timeout_ms: int = 5000) -> Backend:
    if is_url(db):
        # Here, not at the top: a process on a file never loads psycopg (0.1 s a start,
        # paid by every checkpoint the service runs as a process of its own).
        from service.storage.postgres.backend import PostgresBackend

        return PostgresBackend(str(db), busy_timeout_ms)
    return SqliteBackend(Path(db), busy_timeout_ms)


class Backend:
    """What every backend offers; see `SqliteBackend` and `PostgresBackend`."""

    name: str
    #: What to say in a message or a log line (a path, or a URL without its password).
    display: str
    #: The writer's statements: `service.storage.appends` or its PostgreSQL twin.
    appends: ModuleType
    #: What a failing or unreachable database raises.
    errors: tuple[type[Exception], ...]

    @property
    def refusals(self) -> tuple[type[Exception], ...]:
        """What opening a log may raise: `errors`, or `FileNotFoundError` for no log."""
        return (FileNotFoundError, *self.errors)

    #: What a read raises when the database cannot be reached now (503, try again).
    unreachable: tuple[type[Exception], ...]

    async def connect_writer(self) -> Any:
        raise NotImplementedError

    async def connect_reader(self) -> Any:
        raise NotImplementedError

    def connect_sync(self, *, readonly: bool = True) -> Any:
        raise NotImplementedError

    def snapshot(self, db: Any) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def reading(self) -> contextlib.AbstractContextManager[Any]:
        """A read-only connection for one query in a worker thread, inside one snapshot.

        After `close`, one of `unreachable`: a read that comes late (a thread the server
        let go as it stopped) opens nothing that would then stay open.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Close the connections `reading` keeps, for good: a read under way closes its
        own when it ends."""

    def broken(self, db: Any) -> bool:
        """Whether the server or the network dropped `db`, so it must be opened again."""
        return bool(self.appends.broken(db))

    async def wakeups(self, wake: Callable[[], None]) -> None:
        """Call `wake` whenever another process made a callback due; runs until cancelled.

        A file has no such channel: couriers there poll, and one process's commits wake
        its own courier directly.
        """
        await asyncio.Event().wait()


class SqliteBackend(Backend):
    name = "sqlite"
    appends = sqlite_appends
    errors = (sqlite3.Error,)
    unreachable = (sqlite3.OperationalError,)

    def __init__(self, path: Path, busy_timeout_ms: int) -> None:
        self.path = path
        self.display = str(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    async def connect_writer(self) -> Any:
        return await sqlite.connect(self.path, busy_timeout_ms=self._busy_timeout_ms, writer=True)

    async def connect_reader(self) -> Any:
        return await sqlite.connect_readonly(self.path, busy_timeout_ms=self._busy_timeout_ms)

    def connect_sync(self, *, readonly: bool = True) -> Any:
        return sqlite.connect_sync(self.path, readonly=readonly)

    def snapshot(self, db: Any) -> contextlib.AbstractContextManager[Any]:
        return sqlite.snapshot(db)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Any]:
        with self._lock:
            if self._closed:
                raise sqlite3.OperationalError(f"the read side of {self.display} is closed")
            db = self._idle.pop() if self._idle else None
        if db is None:
            db = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        try:
            with sqlite.snapshot(db):
                yield db
        finally:
            with self._lock:
                kept = not self._closed
                if kept:
                    self._idle.append(db)
            if not kept:
                db.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle, self._closed = self._idle, [], True
        for db in idle:
            db.close()

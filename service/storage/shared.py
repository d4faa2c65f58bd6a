"""The log a connection reads, for other processes to read too: `verify`'s workers.

`shared(db)` gives a small handle that pickles; `handle.reading()`, in any process, opens
a connection of its own inside a snapshot. On SQLite the handle names the file and each
reader takes a snapshot of its own: the log only grows, and `verify` reads every part up
to the same last position. PostgreSQL's twin hands over the connection's snapshot itself
(`service.storage.postgres.shared`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

import msgspec

from service.storage.dialects import portable
from service.storage.sqlite import connect_sync, snapshot

__all__ = ["Shared", "SharedFile", "shared"]


class Shared(Protocol):
    def reading(self) -> AbstractContextManager[Any]:
        """A connection of this process's own, inside a snapshot; closed on leaving."""
        ...


class SharedFile(msgspec.Struct, frozen=True):
    path: str

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        db = connect_sync(Path(self.path))
        try:
            with snapshot(db):
                yield db
        finally:
            db.close()


@portable
def shared(db: sqlite3.Connection) -> Shared | None:
    """How another process reads the log `db` reads; None when it cannot (a database in
    memory, or on PostgreSQL a connection outside a transaction, with no snapshot)."""
    name = db.execute("PRAGMA database_list").fetchone()[2]
    return SharedFile(name) if name else None

"""PostgreSQL's `shared`: the connection's own snapshot, exported for other sessions.

`verify`'s worker processes then read exactly the rows that the process which started
them reads, whatever a writer commits meanwhile: `pg_export_snapshot()`, as `pg_dump
--jobs` shares one snapshot among its workers. An exported snapshot lives as long as the
transaction that exported it, and `verify` holds that open until every part is in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus

from service.storage.postgres.connections import Connection, connect_sync, snapshot

__all__ = ["SharedSnapshot", "shared"]


class SharedSnapshot(msgspec.Struct, frozen=True):
    #: How to connect, the password included (the handle goes to child processes through
    #: a pipe, never onto a command line or a disk).
    conninfo: str
    snapshot: str

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        db = connect_sync(self.conninfo)
        try:
            with snapshot(db, of=self.snapshot):
                yield db
        finally:
            db.close()


def shared(db: Connection) -> SharedSnapshot | None:
    """`db`'s snapshot for other sessions; None outside a transaction, where each
    statement has its own snapshot and there is none to share. `db` reads in one
    snapshot only at repeatable read (`connections.snapshot`), as the shell's tools do."""
    if db.info.transaction_status != TransactionStatus.INTRANS:
        return None
    exported = db.execute("SELECT pg_export_snapshot() AS id").fetchone()
    assert exported is not None
    password = db.info.password
    conninfo = make_conninfo(db.info.dsn, password=password) if password else db.info.dsn
    return SharedSnapshot(conninfo, exported["id"])

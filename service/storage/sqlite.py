"""Connections to the SQLite file: the writer's, the worker's and the shell's.

Only the writer's and the shell's writable connection run migrations: every other
connection is opened read-only, so a reader can never change the file it audits.
Rows come back as `sqlite3.Row`, read by column name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiosqlite

from service.storage import files
from service.storage.schema import PRAGMAS, migration_script

__all__ = ["connect", "connect_readonly", "connect_sync", "plain_cursor", "snapshot"]


async def connect(
    path: Path, *, busy_timeout_ms: int = 5000, writer: bool = False
) -> aiosqlite.Connection:
    """An async connection with the schema in place; creates the file and its folder.

    The writer's connection opens `BEGIN IMMEDIATE` by itself before its first write, so
    that a write can never land outside a transaction; other connections are autocommit.
    """
    files.prepare_database(path)
    import aiosqlite  # here, not at the top: a shell tool on a file never loads it

    # The writer's inserts run on the event loop's thread, its COMMIT on the connection's
    # own (`appends.write`), one after the other, never at once.
    db = await aiosqlite.connect(
        path, isolation_level="IMMEDIATE" if writer else None, check_same_thread=not writer
    )
    try:
        db.row_factory = sqlite3.Row
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await db.executescript(PRAGMAS)
        rows = list(await db.execute_fetchall("PRAGMA user_version"))
        await db.executescript(migration_script(int(rows[0][0])))
    except BaseException:
        await db.close()
        raise
    return db


async def connect_readonly(path: Path, *, busy_timeout_ms: int = 5000) -> aiosqlite.Connection:
    """An async read-only connection to a log that the writer has already created."""
    import aiosqlite

    db = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    db.row_factory = sqlite3.Row
    await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    return db


def connect_sync(path: Path, *, readonly: bool = True) -> sqlite3.Connection:
    """A plain connection for the command-line tools; read-only unless asked otherwise."""
    if readonly:
        if not path.exists():
            raise FileNotFoundError(f"no event log at {path}")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    else:
        files.prepare_database(path)
        db = sqlite3.connect(path, isolation_level=None)
        db.executescript(PRAGMAS)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.executescript(migration_script(version))
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA busy_timeout = 5000")
    return db


def plain_cursor(db: sqlite3.Connection, *, arraysize: int = 1) -> sqlite3.Cursor:
    """A cursor of `db` whose rows are plain tuples, not the connection's `sqlite3.Row`:
    reads that make rows into shapes of their own pay for no mapping a row. `arraysize`
    is how many rows `fetchmany` takes at a time."""
    cursor = db.cursor()
    cursor.row_factory = None
    cursor.arraysize = arraysize
    return cursor


@contextmanager
def snapshot(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Every read inside sees the log as of one commit."""
    db.execute("BEGIN")
    try:
        yield db
    finally:
        db.execute("COMMIT")

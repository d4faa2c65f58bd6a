"""Checkpoints on PostgreSQL: `service.storage.checkpoints`, statement for statement."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from service.storage.checkpoints import (
    TICKET_SNAPSHOT_COLUMNS,
    Checkpoint,
    checkpoint_of,
    encode_records,
)
from service.storage.postgres.connections import Connection, snapshot
from service.storage.postgres.nul import unshield, unshield_tags
from service.timestamps import utc_now

__all__ = [
    "INSERT_CHECKPOINT",
    "at",
    "at_or_before",
    "current",
    "every",
    "latest_position",
    "positions_after",
    "store",
]

#: A checkpoint once made is never replaced: the same position always means the same tickets.
INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (position, tickets, digest, snapshot, created_at)"
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (position) DO NOTHING"
)


def current(db: Connection, base: int = 0) -> Checkpoint | None:
    """The checkpoint of the log as it stands, read in one snapshot, or with a `base` the
    delta on the checkpoint there (see SQLite's twin)."""
    with snapshot(db):
        position = int(_one(db, _LAST_EVENT, ()))
        count = int(_one(db, _COUNT_CHANGED, (base,)))
        data = encode_records(count, _ticket_rows(db, base), base)
    if position == 0:
        return None
    return checkpoint_of(position, count, data)


def at(db: Connection, position: int) -> Checkpoint | None:
    """The checkpoint at `position`, if there is one."""
    return _read(db, _AT, position)


def store(db: Connection, checkpoint: Checkpoint) -> bool:
    """Write `checkpoint` in a transaction of its own; False if one was at that position."""
    with db.transaction():
        added = db.execute(INSERT_CHECKPOINT, (*checkpoint, utc_now())).rowcount
    return bool(added == 1)


def at_or_before(db: Connection, position: int) -> Iterator[Checkpoint]:
    """Checkpoints at or before `position`, nearest first, read one at a time (a
    statement each: see `_read`)."""
    while (checkpoint := _read(db, _AT_OR_BEFORE, position)) is not None:
        yield checkpoint
        position = checkpoint.position - 1


def every(db: Connection) -> Iterator[Checkpoint]:
    """Every checkpoint, in position order, one at a time (a statement each)."""
    position = -(2**62)
    while (checkpoint := _read(db, _AFTER_ONE, position)) is not None:
        yield checkpoint
        position = checkpoint.position


def positions_after(db: Connection, position: int) -> list[int]:
    """The positions of the checkpoints after `position`, in order."""
    return [row["position"] for row in db.execute(_AFTER, (position,)).fetchall()]


def latest_position(db: Connection, at_most: int = 2**62) -> int:
    """The position of the last checkpoint at or before `at_most` (0 when there is none)."""
    return int(_one(db, _LATEST, (at_most,)))


def _ticket_rows(db: Connection, base: int) -> Iterator[tuple[Any, ...]]:
    """The tickets with an event after `base` as SQLite's twin reads them: NUL restored,
    tags as the writer made them."""
    with db.cursor() as cursor:
        cursor.execute(_CHANGED, (base,))
        while rows := cursor.fetchmany(1000):
            for row in rows:
                row["title"], row["details"] = unshield(row["title"]), unshield(row["details"])
                row["custom_tags"] = unshield_tags(row["custom_tags"])
                yield tuple(row[column] for column in TICKET_SNAPSHOT_COLUMNS)


def _one(db: Connection, sql: str, params: tuple[Any, ...]) -> Any:
    """The one value of a statement that always answers one row."""
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return row["n"]


def _read(db: Connection, sql: str, position: int) -> Checkpoint | None:
    """The one checkpoint `sql` finds from `position`, if any.

    One at a time, because psycopg's cursor takes a statement's whole answer at once: a
    walk of the checkpoints back from a million events took every snapshot before it
    over the wire (76 MB) to use the first. In binary, because as text a snapshot
    crosses the wire in hex, twice its size, and is decoded back.
    """
    row = db.execute(sql, (position,), binary=True).fetchone()
    if row is None:
        return None
    return Checkpoint(row["position"], row["tickets"], row["digest"], bytes(row["snapshot"]))


_CHANGED = f"SELECT {', '.join(TICKET_SNAPSHOT_COLUMNS)} FROM tickets WHERE last_position > %s"
_COUNT_CHANGED = "SELECT COUNT(*) AS n FROM tickets WHERE last_position > %s"
_COLUMNS = "position, tickets, digest, snapshot"
_AT_OR_BEFORE = (
    f"SELECT {_COLUMNS} FROM checkpoints WHERE position <= %s ORDER BY position DESC LIMIT 1"
)
_AFTER_ONE = f"SELECT {_COLUMNS} FROM checkpoints WHERE position > %s ORDER BY position LIMIT 1"
_LATEST = "SELECT COALESCE(MAX(position), 0) AS n FROM checkpoints WHERE position <= %s"
_AFTER = "SELECT position FROM checkpoints WHERE position > %s ORDER BY position"
_AT = f"SELECT {_COLUMNS} FROM checkpoints WHERE position = %s"
_LAST_EVENT = "SELECT COALESCE(MAX(position), 0) AS n FROM events"

"""Checkpoints: every ticket as it stood at a log position, kept as one checked blob.

A checkpoint is derived data: it is never part of the hash chain, `verify` rebuilds each
from genesis and compares, and deleting one costs only speed. Its snapshot is the
`Rewind` records of every ticket, MessagePack-encoded, with the SHA-256 of the bytes
beside it, so that a damaged snapshot is noticed and passed over instead of trusted.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from service.storage.sqlite import connect_sync, snapshot
from statemachine.projection import Record
from statemachine.ticket import State

__all__ = [
    "INSERT_CHECKPOINT",
    "Checkpoint",
    "at_or_before",
    "current",
    "every",
    "latest_position",
    "records_of",
    "snapshot_of",
]

#: A checkpoint once made is never replaced: the same position always means the same tickets.
INSERT_CHECKPOINT = (
    "INSERT OR IGNORE INTO checkpoints (position, tickets, digest, snapshot, created_at)"
    " VALUES (?, ?, ?, ?, ?)"
)


class Checkpoint(NamedTuple):
    position: int
    tickets: int
    digest: str
    snapshot: bytes


def snapshot_of(position: int, records: dict[str, Record]) -> Checkpoint:
    """The checkpoint of `records`, the tickets as the first `position` events left them."""
    snapshot = _encode(records)
    return Checkpoint(position, len(records), hashlib.sha256(snapshot).hexdigest(), snapshot)


def records_of(checkpoint: Checkpoint) -> dict[str, Record] | None:
    """The tickets a checkpoint holds; None when it is damaged (so it must not be used)."""
    snapshot = bytes(checkpoint.snapshot)
    if hashlib.sha256(snapshot).hexdigest() != checkpoint.digest:
        return None
    try:
        records = _decode(snapshot)
    except msgspec.DecodeError:
        return None
    return records if len(records) == checkpoint.tickets else None


def current(path: Path) -> Checkpoint | None:
    """The checkpoint of the log at `path` as it stands: its `tickets` rows, read in one
    snapshot with the last position (the writer changes both in one transaction).

    None on an empty log. Runs on a read-only connection of its own, off the writer.
    """
    db = connect_sync(path, readonly=True)
    try:
        with snapshot(db):
            position = int(
                db.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0]
            )
            cursor = db.cursor()
            cursor.row_factory = None
            rows = cursor.execute(_TICKETS).fetchall()
    finally:
        db.close()
    if position == 0:
        return None
    records = {
        row[0]: Record(row[1], State(row[2]), row[3], row[4], _decode_tags(row[5]), row[6], row[7])
        for row in rows
    }
    return snapshot_of(position, records)


def at_or_before(db: sqlite3.Connection, position: int) -> Iterator[Checkpoint]:
    """Checkpoints at or before `position`, nearest first, read one at a time."""
    cursor = db.cursor()
    cursor.row_factory = None
    cursor.execute(_AT_OR_BEFORE, (position,))
    yield from (Checkpoint(*row) for row in cursor)


def every(db: sqlite3.Connection) -> Iterator[Checkpoint]:
    """Every checkpoint, in position order, one at a time."""
    cursor = db.cursor()
    cursor.row_factory = None
    cursor.execute(_EVERY)
    yield from (Checkpoint(*row) for row in cursor)


def latest_position(db: Any, at_most: int = 2**62) -> int:
    """The position of the last checkpoint at or before `at_most` (0 when there is none)."""
    row = db.execute(_LATEST, (at_most,)).fetchone()
    return int(row[0])


_TICKETS = (
    "SELECT ncentral_ticket_id, external_ticket_id, state, title, details, custom_tags,"
    " created_at, updated_at FROM tickets"
)
_COLUMNS = "position, tickets, digest, snapshot"
_AT_OR_BEFORE = f"SELECT {_COLUMNS} FROM checkpoints WHERE position <= ? ORDER BY position DESC"
_LATEST = "SELECT COALESCE(MAX(position), 0) FROM checkpoints WHERE position <= ?"
_EVERY = f"SELECT {_COLUMNS} FROM checkpoints ORDER BY position"
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(dict[str, Record]).decode
_decode_tags = msgspec.json.Decoder(dict[str, str]).decode

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
from typing import Any, NamedTuple

import msgspec

from service.storage.dialects import portable
from service.storage.rows import TICKET_COLUMNS
from service.storage.sqlite import snapshot
from service.timestamps import utc_now
from statemachine.projection import Record
from statemachine.ticket import State

__all__ = [
    "INSERT_CHECKPOINT",
    "TICKET_SNAPSHOT_COLUMNS",
    "Checkpoint",
    "at_or_before",
    "current",
    "encode_record",
    "encode_records",
    "every",
    "latest_position",
    "raw_records_of",
    "record_of",
    "records_of",
    "snapshot_of",
    "store",
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


def raw_records_of(checkpoint: Checkpoint) -> dict[str, msgspec.Raw] | None:
    """The tickets a checkpoint holds, each record still encoded; None when it is damaged.

    Splitting the snapshot into its records costs a tenth of decoding them all: a reader
    that needs only some tickets decodes those (`record_of`).
    """
    snapshot = bytes(checkpoint.snapshot)
    if hashlib.sha256(snapshot).hexdigest() != checkpoint.digest:
        return None
    try:
        records = _decode_raw(snapshot)
    except msgspec.DecodeError:
        return None
    return records if len(records) == checkpoint.tickets else None


def record_of(raw: msgspec.Raw) -> Record | None:
    """One ticket's record from `raw_records_of`; None if it is not a record."""
    try:
        return _decode_record(raw)
    except msgspec.DecodeError:
        return None


@portable
def current(db: sqlite3.Connection) -> Checkpoint | None:
    """The checkpoint of the log as it stands: its `tickets` rows, read in one snapshot
    with the last position (the writer changes both in one transaction).

    None on an empty log. Meant for a read-only connection of its own, off the writer; it
    encodes a chunk of rows at a time, so that no process ever holds every ticket as Python
    objects at once: only the snapshot's bytes.
    """
    with snapshot(db):
        position = int(db.execute(_LAST_EVENT).fetchone()[0])
        count = int(db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0])
        cursor = db.cursor()
        cursor.row_factory = None
        cursor.arraysize = 1000
        cursor.execute(_TICKETS)
        data = encode_records(count, (row for rows in iter(cursor.fetchmany, []) for row in rows))
    if position == 0:
        return None
    return Checkpoint(position, count, hashlib.sha256(data).hexdigest(), data)


@portable
def store(db: sqlite3.Connection, checkpoint: Checkpoint) -> bool:
    """Write `checkpoint` in a transaction of its own; False if the log had one at that
    position already. One INSERT: it holds the write lock for as long as writing the
    snapshot's pages takes, and the service's writer waits that long."""
    db.execute("BEGIN IMMEDIATE")
    try:
        added = db.execute(INSERT_CHECKPOINT, (*checkpoint, utc_now())).rowcount
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return bool(added == 1)


def encode_records(count: int, rows: Iterator[tuple[Any, ...]]) -> bytes:
    """`count` tickets rows (`TICKET_SNAPSHOT_COLUMNS` order) as a snapshot, row by row."""
    buffer = bytearray(_MAP32 + count.to_bytes(4, "big"))
    for row in rows:
        _encoder.encode_into(row[0], buffer, -1)
        _encoder.encode_into(_record(row), buffer, -1)
    return bytes(buffer)


def encode_record(record: Record) -> bytes:
    """One ticket's record as a snapshot holds it."""
    return _encode(record)


def _record(row: tuple[Any, ...]) -> Record:
    return Record(row[1], State(row[2]), row[3], row[4], _decode_tags(row[5]), row[6], row[7])


@portable
def at_or_before(db: sqlite3.Connection, position: int) -> Iterator[Checkpoint]:
    """Checkpoints at or before `position`, nearest first, read one at a time."""
    cursor = db.cursor()
    cursor.row_factory = None
    cursor.execute(_AT_OR_BEFORE, (position,))
    yield from (Checkpoint(*row) for row in cursor)


@portable
def every(db: sqlite3.Connection) -> Iterator[Checkpoint]:
    """Every checkpoint, in position order, one at a time."""
    cursor = db.cursor()
    cursor.row_factory = None
    cursor.execute(_EVERY)
    yield from (Checkpoint(*row) for row in cursor)


@portable
def latest_position(db: Any, at_most: int = 2**62) -> int:
    """The position of the last checkpoint at or before `at_most` (0 when there is none)."""
    row = db.execute(_LATEST, (at_most,)).fetchone()
    return int(row[0])


#: The `tickets` columns a snapshot is made of, in the order `encode_records` reads them:
#: what a ticket shows, without the writer's bookkeeping (version, position, last request).
TICKET_SNAPSHOT_COLUMNS = TICKET_COLUMNS[: TICKET_COLUMNS.index("stream_version")]
_TICKETS = f"SELECT {', '.join(TICKET_SNAPSHOT_COLUMNS)} FROM tickets"
_COLUMNS = "position, tickets, digest, snapshot"
_AT_OR_BEFORE = f"SELECT {_COLUMNS} FROM checkpoints WHERE position <= ? ORDER BY position DESC"
_LATEST = "SELECT COALESCE(MAX(position), 0) FROM checkpoints WHERE position <= ?"
_EVERY = f"SELECT {_COLUMNS} FROM checkpoints ORDER BY position"
_encoder = msgspec.msgpack.Encoder()
_encode = _encoder.encode
#: MessagePack's map with a 32-bit count: written first, then each ticket as it is read.
_MAP32 = b"\xdf"
_LAST_EVENT = "SELECT COALESCE(MAX(position), 0) FROM events"
_decode = msgspec.msgpack.Decoder(dict[str, Record]).decode
_decode_raw = msgspec.msgpack.Decoder(dict[str, msgspec.Raw]).decode
_decode_record = msgspec.msgpack.Decoder(Record).decode
_decode_tags = msgspec.json.Decoder(dict[str, str]).decode

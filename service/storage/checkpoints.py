"""Checkpoints: every ticket as it stood at a log position, kept as one checked blob.

A checkpoint is derived data: it is never part of the hash chain, `verify` rebuilds each
from genesis and compares, and deleting one costs only speed. Its snapshot is the
`Rewind` records of tickets, MessagePack-encoded, then compressed by zlib (a tenth of the
bytes to store and to read: on PostgreSQL, fetching a full checkpoint's 12.5 MB cost
more than the rest of reaching a moment), with the SHA-256 of the bytes stored beside
it, so that a damaged snapshot is noticed and passed over instead of trusted. The first
checkpoints were stored uncompressed, and are read as they are.

A full checkpoint holds every ticket (a map of records). A delta holds only the tickets
that changed since an earlier checkpoint, its base (an array: the base's position, then
the map): the tickets at its position are the base's, with the delta's replacing theirs.
So checkpoints can be made often while their size grows with what changed, not with the
number of tickets; at least every `FULL_EVERY`th is full, so that reaching any moment
reads one full snapshot and a few deltas. The table is the same for both kinds: a reader
that knew only full ones would find a delta undecodable and pass it over, as damaged.
"""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import msgspec

from service.storage.dialects import portable
from service.storage.rows import TICKET_COLUMNS
from service.storage.sqlite import plain_cursor, snapshot
from service.timestamps import utc_now
from statemachine.projection import Projection, Record
from statemachine.ticket import State

__all__ = [
    "FULL_EVERY",
    "INSERT_CHECKPOINT",
    "TICKET_SNAPSHOT_COLUMNS",
    "Checkpoint",
    "Checkpointing",
    "Held",
    "at",
    "at_or_before",
    "checkpoint_of",
    "current",
    "decode_records",
    "delta_base",
    "delta_of",
    "encode_record",
    "encode_records",
    "every",
    "latest_position",
    "positions_after",
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


#: At least every this many checkpoints one is full: the rest are deltas on the one before.
FULL_EVERY = 10


class Checkpoint(NamedTuple):
    position: int
    #: How many tickets the snapshot holds (a delta's: those that changed).
    tickets: int
    digest: str
    #: As stored (`checkpoint_of`).
    snapshot: bytes


class Held(NamedTuple):
    """What a sound checkpoint holds: its base (0 for a full one) and its tickets' records,
    each still encoded (splitting a snapshot into records costs a tenth of decoding them
    all, so a reader decodes only the tickets it needs, with `record_of`)."""

    base: int
    #: A reader may take records out of it as it decodes them (`Rewind` does).
    records: dict[str, msgspec.Raw]
    #: The MessagePack document the snapshot holds, which `records` are views of.
    document: bytes
    #: How many records the snapshot holds.
    tickets: int


class Checkpointing:
    """The checkpoints of a log folded from genesis, where the service would have made
    them: at every multiple of `every`, at least every `FULL_EVERY`th full, the others
    deltas on the one before. For whole logs made or moved at once (`migrate`, the
    benchmarks' big logs), whose time travel should start as near as the service's does.
    """

    def __init__(self, projection: Projection, every: int) -> None:
        self._projection = projection
        self._every = every
        self._touched: set[str] = set()
        self._made = 0
        self._base = 0

    def passed(self, position: int, ticket_id: str | None) -> Checkpoint | None:
        """After the projection has applied the event at `position`: the checkpoint due
        there, if one is."""
        if ticket_id is not None:
            self._touched.add(ticket_id)
        if position % self._every:
            return None
        projection = self._projection
        if self._made % FULL_EVERY == 0:
            made = snapshot_of(position, projection.records())
        else:
            changed = {t: r for t in self._touched if (r := projection.record(t)) is not None}
            made = delta_of(position, self._base, changed)
        self._made, self._base, self._touched = self._made + 1, position, set()
        return made


def snapshot_of(position: int, records: dict[str, Record]) -> Checkpoint:
    """The full checkpoint of `records`, the tickets as the first `position` events left them."""
    return checkpoint_of(position, len(records), _encode(records))


def delta_of(position: int, base: int, changed: dict[str, Record]) -> Checkpoint:
    """The delta at `position` on the checkpoint at `base`: the tickets changed in between."""
    return checkpoint_of(position, len(changed), _encode((base, changed)))


def records_of(checkpoint: Checkpoint) -> dict[str, Record] | None:
    """The tickets a checkpoint holds (a delta's: those that changed), all decoded; None
    when it is damaged (so it must not be used)."""
    held = raw_records_of(checkpoint)
    return None if held is None else decode_records(held)


def raw_records_of(checkpoint: Checkpoint) -> Held | None:
    """What a checkpoint holds, its records still encoded; None when it is damaged."""
    document = _checked(checkpoint)
    if document is None:
        return None
    try:
        held = _decode_raw(document)
    except msgspec.DecodeError:
        return None
    base, records = (0, held) if isinstance(held, dict) else held
    if len(records) != checkpoint.tickets or not 0 <= base < checkpoint.position:
        return None
    return Held(base, records, document, len(records))


def decode_records(held: Held) -> dict[str, Record] | None:
    """Every record `held` holds, decoded in one call (twice as fast as one by one); None
    if one of them is not a record."""
    try:
        decoded = _decode(held.document)
    except msgspec.DecodeError:
        return None
    records = decoded if isinstance(decoded, dict) else decoded[1]
    return records if len(records) == held.tickets else None


def delta_base(db: Any, full_every: int = FULL_EVERY) -> int:
    """What the next checkpoint should add to: the latest one, unless its chain back to a
    full one already holds `full_every` checkpoints, or is broken (then 0: a full one)."""
    for chain, checkpoint in enumerate(at_or_before(db, 2**62), start=1):
        held = raw_records_of(checkpoint)
        if held is None:
            return 0
        if held.base == 0:
            return latest_position(db) if chain < full_every else 0
    return 0


def record_of(raw: msgspec.Raw) -> Record | None:
    """One ticket's record from `raw_records_of`; None if it is not a record."""
    try:
        return _decode_record(raw)
    except msgspec.DecodeError:
        return None


@portable
def current(db: sqlite3.Connection, base: int = 0) -> Checkpoint | None:
    """The checkpoint of the log as it stands: its `tickets` rows, read in one snapshot
    with the last position (the writer changes both in one transaction). With a `base`,
    a delta on the checkpoint there: the rows of tickets with an event after it.

    None on an empty log. Meant for a read-only connection of its own, off the writer; it
    encodes a chunk of rows at a time, so that no process ever holds every ticket as Python
    objects at once: only the snapshot's bytes.
    """
    with snapshot(db):
        position = int(db.execute(_LAST_EVENT).fetchone()[0])
        count = int(db.execute(_COUNT_CHANGED, (base,)).fetchone()[0])
        cursor = plain_cursor(db, arraysize=1000)
        cursor.execute(_CHANGED, (base,))
        rows = (row for rows in iter(cursor.fetchmany, []) for row in rows)
        data = encode_records(count, rows, base)
    if position == 0:
        return None
    return checkpoint_of(position, count, data)


@portable
def at(db: sqlite3.Connection, position: int) -> Checkpoint | None:
    """The checkpoint at `position`, if there is one."""
    row = db.execute(_AT, (position,)).fetchone()
    return Checkpoint(*row) if row is not None else None


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


def encode_records(count: int, rows: Iterator[tuple[Any, ...]], base: int = 0) -> bytes:
    """`count` tickets rows (`TICKET_SNAPSHOT_COLUMNS` order) as a snapshot, row by row:
    a full one, or with a `base` a delta on the checkpoint there."""
    head = _ARRAY2 + _encode(base) if base else b""
    buffer = bytearray(head + _MAP32 + count.to_bytes(4, "big"))
    for row in rows:
        _encoder.encode_into(row[0], buffer, -1)
        _encoder.encode_into(_record(row), buffer, -1)
    return bytes(buffer)


def encode_record(record: Record) -> bytes:
    """One ticket's record as a snapshot holds it."""
    return _encode(record)


def checkpoint_of(position: int, count: int, document: bytes) -> Checkpoint:
    """The checkpoint at `position` of `count` tickets encoded as `document`: stored
    packed (`_PACKED`), its digest that of the bytes stored."""
    snapshot = _PACKED + len(document).to_bytes(4, "big") + zlib.compress(document, _LEVEL)
    return Checkpoint(position, count, hashlib.sha256(snapshot).hexdigest(), snapshot)


def _checked(checkpoint: Checkpoint) -> bytes | None:
    """The MessagePack document a checkpoint holds, if its snapshot still hashes to its
    digest (checked first: only bytes the writer made are unpacked)."""
    snapshot = bytes(checkpoint.snapshot)
    if hashlib.sha256(snapshot).hexdigest() != checkpoint.digest:
        return None
    if snapshot[:1] != _PACKED:
        return snapshot  # as the first checkpoints were stored: the document itself
    size = int.from_bytes(snapshot[1:5], "big")
    try:
        document = zlib.decompress(snapshot[5:], zlib.MAX_WBITS, size)
    except zlib.error:
        return None
    return document if len(document) == size else None


def _record(row: tuple[Any, ...]) -> Record:
    return Record(row[1], State(row[2]), row[3], row[4], _decode_tags(row[5]), row[6], row[7])


@portable
def at_or_before(db: sqlite3.Connection, position: int) -> Iterator[Checkpoint]:
    """Checkpoints at or before `position`, nearest first, read one at a time."""
    cursor = plain_cursor(db)
    cursor.execute(_AT_OR_BEFORE, (position,))
    yield from (Checkpoint(*row) for row in cursor)


@portable
def every(db: sqlite3.Connection) -> Iterator[Checkpoint]:
    """Every checkpoint, in position order, one at a time."""
    cursor = plain_cursor(db)
    cursor.execute(_EVERY)
    yield from (Checkpoint(*row) for row in cursor)


@portable
def positions_after(db: sqlite3.Connection, position: int) -> list[int]:
    """The positions of the checkpoints after `position`, in order."""
    return [row[0] for row in db.execute(_AFTER, (position,)).fetchall()]


@portable
def latest_position(db: Any, at_most: int = 2**62) -> int:
    """The position of the last checkpoint at or before `at_most` (0 when there is none)."""
    row = db.execute(_LATEST, (at_most,)).fetchone()
    return int(row[0])


#: The `tickets` columns a snapshot is made of, in the order `encode_records` reads them:
#: what a ticket shows, without the writer's bookkeeping (version, position, last request).
TICKET_SNAPSHOT_COLUMNS = TICKET_COLUMNS[: TICKET_COLUMNS.index("stream_version")]
_CHANGED = f"SELECT {', '.join(TICKET_SNAPSHOT_COLUMNS)} FROM tickets WHERE last_position > ?"
_COUNT_CHANGED = "SELECT COUNT(*) FROM tickets WHERE last_position > ?"
_COLUMNS = "position, tickets, digest, snapshot"
_AT_OR_BEFORE = f"SELECT {_COLUMNS} FROM checkpoints WHERE position <= ? ORDER BY position DESC"
_LATEST = "SELECT COALESCE(MAX(position), 0) FROM checkpoints WHERE position <= ?"
_EVERY = f"SELECT {_COLUMNS} FROM checkpoints ORDER BY position"
_AFTER = "SELECT position FROM checkpoints WHERE position > ? ORDER BY position"
_AT = f"SELECT {_COLUMNS} FROM checkpoints WHERE position = ?"
#: A snapshot stored packed starts with 0xC1, a byte MessagePack never uses (so no snapshot
#: stored as its document, as the first ones were, starts with it), then the document's
#: length (4 bytes, big-endian), then the document compressed by zlib.
_PACKED = b"\xc1"
#: zlib's default: a full checkpoint of 12.5 MB packs to 1.3 MB and unpacks in 10 ms (at
#: level 1, to 1.6 MB in 13 ms); packing it takes 90 ms, once, off the writer.
_LEVEL = 6
_encoder = msgspec.msgpack.Encoder()
_encode = _encoder.encode
#: MessagePack's map with a 32-bit count: written first, then each ticket as it is read.
_MAP32 = b"\xdf"
#: MessagePack's array of two: a delta's base, then its map.
_ARRAY2 = b"\x92"
_LAST_EVENT = "SELECT COALESCE(MAX(position), 0) FROM events"
_decode = msgspec.msgpack.Decoder(dict[str, Record] | tuple[int, dict[str, Record]]).decode
_decode_raw = msgspec.msgpack.Decoder(
    dict[str, msgspec.Raw] | tuple[int, dict[str, msgspec.Raw]]
).decode
_decode_record = msgspec.msgpack.Decoder(Record).decode
_decode_tags = msgspec.json.Decoder(dict[str, str]).decode

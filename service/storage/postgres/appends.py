"""What the writer writes on PostgreSQL, and what it reads inside the append lock.

Several replicas append to one log, so each batch's transaction starts by taking a
transaction-scoped advisory lock (`begin`): batches of all replicas run one after
another, the lock is released by COMMIT or ROLLBACK and never outlives them. Inside the
lock the writer reads the tail; if it is not the one this replica last wrote, `begin`
also names the tickets whose events came since, so the writer reloads exactly those
before deciding. Positions are still assigned by the writer (a sequence would leave gaps
on rollback), so commit order is position order and the hash chain is one.
`service.storage.appends` has the same names for SQLite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from service.storage.appends import Began, Loaded, Writes
from service.storage.postgres.connections import AsyncConnection
from service.storage.postgres.nul import shield, shield_tags
from service.storage.postgres.outbox import CHANNEL, STATEMENTS, WAKES
from service.storage.rows import EVENT_COLUMNS, STREAM_COLUMNS, TICKET_COLUMNS
from statemachine.events import GENESIS_HASH

__all__ = [
    "APPEND_LOCK",
    "COPY_FROM",
    "INSERT_EVENTS",
    "LOCKS",
    "MOVED",
    "UPSERT_TICKET",
    "UPSERT_TICKETS",
    "begin",
    "broken",
    "load",
    "rollback",
    "ticket_params",
    "write",
]

# The advisory lock key of appends: the bytes of "psa-appd" (the migrations hold "psa-migr").
APPEND_LOCK = int.from_bytes(b"psa-appd", "big")

#: `begin` takes the append lock and reads the tail: a round trip the writer overlaps.
LOCKS = True

#: The smallest batch (in requests) whose events go by COPY: below it, one statement in
#: the pipeline (`INSERT_EVENTS`) takes as long or less, without COPY's round trips
#: (8 events a batch: 0.96 ms against 0.98; 16: 1.22 against 1.15; 32: even; 64: 2.72
#: against 2.37; 128: 3.18 against 2.49; bench/results.md, round 14).
COPY_FROM = 32

#: Another writer got the position first: only possible from a writer that skips the lock.
MOVED: type[Exception] = psycopg.errors.UniqueViolation

# Past this many events by other replicas since our last batch, the whole cache is dropped
# instead of the tickets they moved.
_MOVED_LIMIT = 10_000
_CONTENT_COLUMNS = ("title", "details", "custom_tags")
_TEXT_AT = tuple(TICKET_COLUMNS.index(name) for name in ("title", "details"))
_TAGS_AT = TICKET_COLUMNS.index("custom_tags")
_LAST_ACCEPTED_AT = TICKET_COLUMNS.index("last_accepted")


def _from_json(columns: tuple[str, ...], keep: tuple[str, ...] = ()) -> str:
    """The values of one row of `columns` sent as a JSON array (`incoming.row`), each
    as its column's type; one of `keep` given as null keeps the stored value."""
    values = []
    for index, name in enumerate(columns):
        value = f"incoming.row->>{index}"
        if name in _NUMBER_COLUMNS:
            value = f"({value})::{_NUMBER_COLUMNS[name]}"
        elif name in keep:
            value = f"COALESCE({value}, stored.{name})"
        values.append(value)
    return ", ".join(values)


# The columns that are not text, in either table.
_NUMBER_COLUMNS = {
    "position": "bigint",
    "stream_version": "integer",
    "schema_version": "integer",
    "last_position": "bigint",
}
_FROM_DOCUMENT = "FROM jsonb_array_elements(%s::jsonb) AS incoming(row)"

# A batch too small for COPY (`COPY_FROM`): its events in one statement, their rows sent
# as one JSON array (`_document`) that the server unpacks, in the pipeline. An
# `executemany` of a row-at-a-time INSERT cost psycopg ~20 µs of Python a row.
INSERT_EVENTS = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)})"
    f" SELECT {_from_json(EVENT_COLUMNS)} {_FROM_DOCUMENT}"
)
# The whole row; a content column given as NULL keeps the stored value. The row is built
# by a SELECT joined to the stored one, since NOT NULL is checked before ON CONFLICT.
# One ticket a run: `storage.postgres.copy`'s, and the bench's baseline's.
UPSERT_TICKET = (
    f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)}) SELECT "
    + ", ".join(
        f"COALESCE(%s, stored.{name})" if name in _CONTENT_COLUMNS else "%s"
        for name in TICKET_COLUMNS
    )
    + " FROM (SELECT %s::text AS id) AS incoming"
    " LEFT JOIN tickets AS stored ON stored.ncentral_ticket_id = incoming.id"
    " ON CONFLICT (ncentral_ticket_id) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in TICKET_COLUMNS[1:])
)

# What the writer runs: a batch's tickets in one statement, sent as `INSERT_EVENTS` sends
# events (`_tickets_document`). The `executemany` of `UPSERT_TICKET` cost psycopg ~18 µs
# of Python a row and the server a statement each: a batch of 100 tickets took 5.2-5.4 ms,
# and 2.0-2.1 ms this way (3.7-3.9 µs a row; bench/results.md, round 14). A batch holds
# each ticket once (`Batch.ticket_rows`), as ON CONFLICT requires of one statement.
UPSERT_TICKETS = (
    f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)})"
    f" SELECT {_from_json(TICKET_COLUMNS, keep=_CONTENT_COLUMNS)} {_FROM_DOCUMENT}"
    " LEFT JOIN tickets AS stored ON stored.ncentral_ticket_id = incoming.row->>0"
    " ON CONFLICT (ncentral_ticket_id) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in TICKET_COLUMNS[1:])
)


async def begin(
    db: AsyncConnection,
    after: int | None,
    waiting: Callable[[], None] = lambda: None,
    *,
    locked: bool = True,
) -> Began:
    """Take the append lock, then read the tail and what moved after position `after`
    (always: `locked` is for SQLite, which takes its lock only when asked).

    One round trip when the lock is free: the statements are pipelined, and PostgreSQL
    runs them in order, so the reads (read committed: a snapshot per statement) see every
    batch committed before the lock was ours. When another replica holds it, those reads
    are thrown away, `waiting` is called (the writer answers what it owes rather than hold
    the answers through the wait), and the lock is waited for, then the reads made again.
    """
    had, began = await _locked_reads(db, _TRY_LOCK, after)
    if not had:
        waiting()
        _, began = await _locked_reads(db, _LOCK, after)
    return began


async def load(db: AsyncConnection, ticket_ids: Iterable[str], *, with_tail: bool) -> Loaded:
    """The standing and last stream version of `ticket_ids`; the tail if asked."""
    ids = sorted(ticket_ids)
    async with db.pipeline():
        tickets = await db.execute(_STREAMS, (ids,))
        versions = await db.execute(_VERSIONS, (ids,))
        tail_read = await db.execute(_TAIL) if with_tail else None
    tail = await tail_read.fetchone() if tail_read is not None else None
    return Loaded(
        tail,
        await tickets.fetchall(),
        {
            row["ticket_id"]: row["version"]
            for row in await versions.fetchall()
            if row["version"] is not None
        },
    )


async def write(
    db: AsyncConnection,
    writes: Writes,
    queued: Callable[[], None] = lambda: None,
    *,
    begin_next: bool = False,
) -> Began | None:
    """The batch's writes and its COMMIT in one pipeline: one round trip. A callback made
    due wakes every courier.

    A batch of `COPY_FROM` requests or more sends its events by COPY before the
    pipeline, a smaller one by one statement in it (`INSERT_EVENTS`), and the tickets go
    by one statement either way (`UPSERT_TICKETS`): psycopg spent ~20 µs of Python a row
    on an `executemany`, and the writer's process, which also decides and answers, runs
    out of CPU first under a burst. COPY cannot run in a pipeline: it costs two more
    round trips (COPY's start and end), which a small batch does not win back, and which
    other replicas wait through for the append lock.

    With `begin_next` (more work is expected), the pipeline's round trip also begins the
    next batch: it tries the append lock and makes `begin`'s reads. Returns what they
    learnt, or None when the lock was not had (another replica got it first: that
    transaction is rolled back, and the next batch goes through `begin`). A lock taken
    here is the next batch's, held only while that batch is decided and written.

    If any write fails, the server refuses the rest, COMMIT included, and the transaction
    is rolled back: nothing of the batch stays.
    """
    by_copy = len(writes) >= COPY_FROM
    try:
        if by_copy:
            await _copy_events(db, writes.events(), queued)
        async with db.pipeline(), db.cursor() as cursor:
            if not by_copy:
                await cursor.execute(INSERT_EVENTS, (_document(writes.events()),))
            tickets, statements, last_position = writes.rest()
            if tickets:
                await cursor.execute(UPSERT_TICKETS, (_tickets_document(tickets),))
            for name, params in statements:
                await cursor.execute(STATEMENTS[name], params)
            if any(name in WAKES for name, _ in statements):
                await cursor.execute(_NOTIFY, (CHANNEL,))
            if not by_copy:
                queued()  # runs while the writes are on their way (see the writer's docstring)
            if not begin_next:
                await db.commit()
                return None
            # Spelt out: psycopg's own commit() would wait for its answer before the next
            # statement could be queued behind it.
            await cursor.execute("COMMIT")
            await cursor.execute("BEGIN")
            reads = await _queue_locked_reads(db, _TRY_LOCK, last_position)
        had, began = await _locked_reads_result(*reads, last_position)
    except BaseException:
        await rollback(db)
        raise
    if had:
        return began
    # Not left open without the lock: idle in a transaction, the server would end the
    # session (idle_in_transaction_session_timeout) if no work came.
    await rollback(db)
    return None


async def rollback(db: AsyncConnection) -> None:
    with contextlib.suppress(psycopg.Error):
        await db.rollback()


async def _copy_events(
    db: AsyncConnection, events: Iterator[tuple[Any, ...]], queued: Callable[[], None]
) -> None:
    """`events` into the log by one COPY, then `queued` while the server takes the last
    rows (see the writer's docstring)."""
    async with db.cursor() as cursor, cursor.copy(_COPY_EVENTS) as copy:
        copy.set_types(_EVENT_TYPES)
        for row in events:
            await copy.write_row(row)
        queued()


def broken(db: AsyncConnection) -> bool:
    """Whether the server or the network dropped the connection, so it must be reopened."""
    return bool(db.closed or db.broken)


def ticket_params(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A `rows.ticket_row` as `UPSERT_TICKET` takes it: its values as stored, then the id
    again for the join."""
    return (*_stored_values(row), row[0])


def _document(rows: Iterable[Sequence[Any]]) -> Jsonb:
    """Rows as `INSERT_EVENTS` takes them: one JSON array of their values, whose bytes
    psycopg sends as msgspec made them (not decoded to a str for psycopg to encode)."""
    return Jsonb(list(rows), dumps=_encode)


def _tickets_document(rows: Iterable[tuple[Any, ...]]) -> Jsonb:
    """`rows.ticket_row`s as `UPSERT_TICKETS` takes them: their values as stored
    (`_stored_values`: shielded, so no NUL is left for `jsonb` to refuse)."""
    return _document(_stored_values(row) for row in rows)


def _stored_values(row: tuple[Any, ...]) -> list[Any]:
    """A `rows.ticket_row`'s values as PostgreSQL stores them: JSON as text (psycopg would
    send bytes as bytea), N-central's text shielded (`nul`)."""
    values = list(row)
    for index in _TEXT_AT:
        if values[index] is not None:
            values[index] = shield(values[index])
    if values[_TAGS_AT] is not None:
        values[_TAGS_AT] = shield_tags(values[_TAGS_AT])
    if values[_LAST_ACCEPTED_AT] is not None:
        values[_LAST_ACCEPTED_AT] = values[_LAST_ACCEPTED_AT].decode()
    return values


async def _locked_reads(db: AsyncConnection, lock: str, after: int | None) -> tuple[bool, Began]:
    """`lock`, then the tail and the moved tickets, in one round trip; whether the lock was
    had (the reads mean nothing if not)."""
    async with db.pipeline():
        reads = await _queue_locked_reads(db, lock, after)
    return await _locked_reads_result(*reads, after)


_Cursor = psycopg.AsyncCursor[Any]
_Reads = tuple[_Cursor, _Cursor, _Cursor | None]


async def _queue_locked_reads(db: AsyncConnection, lock: str, after: int | None) -> _Reads:
    """`lock` and the reads behind it, queued in the open pipeline; their cursors."""
    locked = await db.execute(lock, (APPEND_LOCK,))
    tail_read = await db.execute(_TAIL)
    moved_read = None
    if after is not None:
        # Planned for its values every time: see `_MOVED`.
        moved_read = await db.execute(_MOVED, (after, after + _MOVED_LIMIT), prepare=False)
    return locked, tail_read, moved_read


async def _locked_reads_result(
    locked: _Cursor, tail_read: _Cursor, moved_read: _Cursor | None, after: int | None
) -> tuple[bool, Began]:
    had = bool((await locked.fetchone() or {}).get("had"))
    tail = await tail_read.fetchone() or _EMPTY_TAIL
    if moved_read is None or after is None:
        return had, Began(tail, None)
    moved = {row["ticket_id"] for row in await moved_read.fetchall()}
    # Positions have no gaps: the range read holds every event after `after` unless the
    # tail is past it.
    read_all = tail["position"] <= after + _MOVED_LIMIT
    return had, Began(tail, moved if read_all else None)


_EMPTY_TAIL: dict[str, Any] = {"position": 0, "hash": GENESIS_HASH, "recorded_at": ""}
# Either way the lock, when had, is the transaction's until COMMIT or ROLLBACK.
_TRY_LOCK = "SELECT pg_try_advisory_xact_lock(%s) AS had"
_LOCK = "SELECT pg_advisory_xact_lock(%s), true AS had"
_TAIL = "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"
# The tickets of the events after a position, read as a bounded range of the log's key.
# Asked as `position > %s` alone, a table the server had not analysed yet (a fresh
# database, a log just moved in) was read whole at every batch: the planner took a third
# of the log to follow any position (27 ms a batch at 208,000 events; 0.05 ms by the key).
# Bounded, it reads at most `_MOVED_LIMIT` positions, and the tail read beside it says
# whether that was all. Never prepared either: PostgreSQL may settle a prepared
# statement on a generic plan, and round three's generic plan walked all of
# `events_by_ticket` (40 ms at 64,000 events, growing with the log).
_MOVED = (
    "SELECT DISTINCT ticket_id FROM events"
    " WHERE position > %s AND position <= %s AND ticket_id IS NOT NULL"
)
_STREAMS = f"SELECT {', '.join(STREAM_COLUMNS)} FROM tickets WHERE ncentral_ticket_id = ANY(%s)"
# Each ticket's last version by one backward step of `events_by_ticket` (PostgreSQL turns
# MAX on an index prefix into that), not a walk of its whole history as a GROUP BY would:
# with several replicas every ticket another one moved is reloaded, and a long-lived
# ticket's reload would cost as many index entries as it has events. NULL: no events.
_VERSIONS = (
    "SELECT asked.ticket_id, (SELECT MAX(stream_version) FROM events"
    " WHERE events.ticket_id = asked.ticket_id) AS version"
    " FROM unnest(%s::text[]) AS asked(ticket_id)"
)
_NOTIFY = "SELECT pg_notify(%s, '')"
_encode = msgspec.json.Encoder().encode
# Binary: 1.3 µs less of the writer's CPU a row than text (3.9 µs against 5.2), and the
# server takes the rows 1.1x as fast (250-row batches, /tmp/s12/copybin.py, round 12).
# Binary needs each column's type named as the schema gives it.
_COPY_EVENTS = f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_EVENT_TYPES = [
    {"position": "int8", "stream_version": "int4", "schema_version": "int4"}.get(name, "text")
    for name in EVENT_COLUMNS
]

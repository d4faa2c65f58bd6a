"""Moving house: a SQLite log copied into an empty PostgreSQL database.

Every event is copied as it is, position and hash included (COPY, in position order,
streamed a chunk at a time), and the projections are made again on the target: the
`tickets` table from the replay of those same events, so it is what the rules derive and
not merely what the file said. Outbox rows are copied as they are, without their leases
(their history is in the events; their `ticket_url` is not). All in one transaction under
the append lock: a replica started early waits, and a failed copy leaves nothing behind.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg

from service.storage import events, rows
from service.storage.outbox import CALLBACK_COLUMNS
from service.storage.postgres.appends import APPEND_LOCK, UPSERT_TICKET, ticket_params
from service.storage.postgres.connections import CONNECT_TIMEOUT, connect_sync
from statemachine.projection import Projection

__all__ = ["NotEmpty", "copy_log"]


class NotEmpty(Exception):
    """The target already holds a log (or psa-ledger's schema): nothing was copied."""


def copy_log(
    source: sqlite3.Connection, url: str, *, progress: Callable[[int], None] | None = None
) -> int:
    """Copy the log read from `source` into the empty database at `url`; how many events.

    Raises `NotEmpty` when the target is not a database psa-ledger has never used.
    """
    _refuse_used(url)
    target = connect_sync(url, readonly=False)  # creates the schema
    try:
        with target.transaction():
            target.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
            count = _copy(source, target, progress)
    finally:
        target.close()
    return count


def _copy(
    source: sqlite3.Connection,
    target: psycopg.Connection[dict[str, object]],
    progress: Callable[[int], None] | None,
) -> int:
    projection = Projection()
    last_position: dict[str, int] = {}
    count = 0
    with target.cursor() as cursor:
        with cursor.copy(f"COPY events ({', '.join(rows.EVENT_COLUMNS)}) FROM STDIN") as copy:
            for event in events.iter_after(source):
                copy.write_row(rows.event_row(event))
                projection.apply(event)
                if event.ticket_id is not None:
                    last_position[event.ticket_id] = event.position
                count += 1
                if progress is not None and count % 100_000 == 0:
                    progress(count)
        tickets = [
            ticket_params(rows.ticket_row(ticket_id, stream, last_position[ticket_id]))
            for ticket_id, stream in projection.streams.items()
            if stream.ticket is not None
        ]
        if tickets:
            cursor.executemany(UPSERT_TICKET, tickets)
        owed = source.execute(_CALLBACKS).fetchall()
        if owed:
            cursor.executemany(_INSERT_CALLBACK, [tuple(row) for row in owed])
    return count


def _refuse_used(url: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as db:
        used = db.execute(_USED).fetchone()
    if used is not None and used[0]:
        raise NotEmpty(
            "the target database is not empty: it already has psa-ledger's tables;"
            " migrate copies into a database psa-ledger has never used"
        )


_USED = "SELECT to_regclass('events') IS NOT NULL OR to_regclass('schema_version') IS NOT NULL"
_COPIED = (*CALLBACK_COLUMNS, "create_position")
_CALLBACKS = f"SELECT {', '.join(_COPIED)} FROM callbacks ORDER BY create_position"
_INSERT_CALLBACK = (
    f"INSERT INTO callbacks ({', '.join(_COPIED)}) VALUES ({', '.join('%s' for _ in _COPIED)})"
)

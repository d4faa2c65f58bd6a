"""Moving house: a SQLite log copied into an empty PostgreSQL database
(`storage.copy` is the way back).

Every event is copied as it is, position and hash included (COPY, in position order,
streamed a chunk at a time), and the projections are made again on the target: the
`tickets` table from the replay of those same events, so it is what the rules derive and
not merely what the file said. Outbox rows are copied as they are, without their leases
(their history is in the events; their `ticket_url` is not). All in one transaction under
the append lock: a replica started early waits, and a failed copy leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from service.storage import rows
from service.storage.copy import (
    COPIED_CALLBACK_COLUMNS,
    NotEmpty,
    Replaying,
    owed_callbacks,
)
from service.storage.postgres.appends import APPEND_LOCK, UPSERT_TICKET, ticket_params
from service.storage.postgres.checkpoints import INSERT_CHECKPOINT
from service.storage.postgres.connections import CONNECT_TIMEOUT, connect_sync

__all__ = ["NotEmpty", "copy_log"]


def copy_log(
    source: Any,
    url: str,
    *,
    progress: Callable[[int], None] | None = None,
    checkpoint_every: int,
) -> int:
    """Copy the log read from `source` into the empty database at `url`, with a checkpoint
    every `checkpoint_every` events; how many events.

    Raises `NotEmpty` when the target is not a database psa-ledger has never used.
    """
    _refuse_used(url)
    target = connect_sync(url, readonly=False)  # creates the schema
    try:
        with target.transaction():
            target.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
            count = _copy(source, target, Replaying(source, progress, checkpoint_every))
        # Statistics now, as after any restore: until autovacuum gets to the new tables,
        # the server would plan the first requests on the copy with its defaults.
        target.execute("ANALYZE")
    finally:
        target.close()
    return count


def _copy(source: Any, target: psycopg.Connection[dict[str, object]], replaying: Replaying) -> int:
    with target.cursor() as cursor:
        with cursor.copy(f"COPY events ({', '.join(rows.EVENT_COLUMNS)}) FROM STDIN") as copy:
            for event in replaying.events():
                copy.write_row(rows.event_row(event))
        tickets = [ticket_params(row) for row in replaying.ticket_rows()]
        if tickets:
            cursor.executemany(UPSERT_TICKET, tickets)
        cursor.executemany(INSERT_CHECKPOINT, list(replaying.checkpoint_rows()))
        owed = owed_callbacks(source)
        if owed:
            cursor.executemany(_INSERT_CALLBACK, owed)
    return replaying.count


def _refuse_used(url: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as db:
        used = db.execute(_USED).fetchone()
    if used is not None and used[0]:
        raise NotEmpty(
            "the target database is not empty: it already has psa-ledger's tables;"
            " migrate copies into a database psa-ledger has never used"
        )


_USED = "SELECT to_regclass('events') IS NOT NULL OR to_regclass('schema_version') IS NOT NULL"
_INSERT_CALLBACK = (
    f"INSERT INTO callbacks ({', '.join(COPIED_CALLBACK_COLUMNS)})"
    f" VALUES ({', '.join('%s' for _ in COPIED_CALLBACK_COLUMNS)})"
)

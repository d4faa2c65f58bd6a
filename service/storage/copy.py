"""Moving back: a log copied out of PostgreSQL into a new SQLite file.

The twin of `storage.postgres.copy`, in the other direction and with the same promises:
every event is copied as it is, position and hash included, in position order; the
`tickets` table is made again by replaying those same events, so it is what the rules
derive; outbox rows are copied without their leases. All in one transaction: a copy that
fails takes the file it was making with it, and a file that already holds anything is
refused, so nothing is ever merged into another log.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from service.storage import events, rows, sqlite
from service.storage.appends import INSERT_EVENT, UPSERT_TICKET
from service.storage.outbox import CALLBACK_COLUMNS
from statemachine.projection import Projection

__all__ = ["COPIED_CALLBACK_COLUMNS", "NotEmpty", "copy_log", "owed_callbacks"]

#: The outbox columns that move with a log: all but a lease, which only its holder knows.
COPIED_CALLBACK_COLUMNS = (*CALLBACK_COLUMNS, "create_position")


class NotEmpty(Exception):
    """The target already holds a log, or anything else: nothing was copied."""


def copy_log(source: Any, path: Path, *, progress: Callable[[int], None] | None = None) -> int:
    """Copy the log read from `source` (a connection, inside a snapshot) into a new SQLite
    file at `path`; how many events. Raises `NotEmpty` when `path` holds anything."""
    _refuse_used(path)
    try:
        with contextlib.closing(sqlite.connect_sync(path, readonly=False)) as target:
            target.execute("BEGIN IMMEDIATE")
            try:
                count = _copy(source, target, progress)
            except BaseException:
                target.execute("ROLLBACK")
                raise
            target.execute("COMMIT")
    except BaseException:
        _remove(path)
        raise
    return count


def owed_callbacks(source: Any) -> list[tuple[Any, ...]]:
    """The outbox rows of `source` (either backend), in `COPIED_CALLBACK_COLUMNS` order."""
    found = source.execute(_CALLBACKS).fetchall()
    return [tuple(row[name] for name in COPIED_CALLBACK_COLUMNS) for row in found]


def _copy(source: Any, target: sqlite3.Connection, progress: Callable[[int], None] | None) -> int:
    projection = Projection()
    last_position: dict[str, int] = {}
    copied = 0

    def event_rows() -> Iterator[tuple[Any, ...]]:
        nonlocal copied
        for event in events.iter_after(source):
            projection.apply(event)
            if event.ticket_id is not None:
                last_position[event.ticket_id] = event.position
            copied += 1
            if progress is not None and copied % 100_000 == 0:
                progress(copied)
            yield rows.event_row(event)

    target.executemany(INSERT_EVENT, event_rows())
    target.executemany(
        UPSERT_TICKET,
        (
            rows.ticket_row(ticket_id, stream, last_position[ticket_id])
            for ticket_id, stream in projection.streams.items()
            if stream.ticket is not None
        ),
    )
    target.executemany(_INSERT_CALLBACK, owed_callbacks(source))
    return copied


def _refuse_used(path: Path) -> None:
    if path.exists() and path.stat().st_size > 0:
        raise NotEmpty(
            "the target file is not empty; migrate copies into a new file (or an empty one)"
        )


def _remove(path: Path) -> None:
    """The file a failed copy was making, and SQLite's files beside it."""
    for made in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        made.unlink(missing_ok=True)


_CALLBACKS = f"SELECT {', '.join(COPIED_CALLBACK_COLUMNS)} FROM callbacks ORDER BY create_position"
_INSERT_CALLBACK = (
    f"INSERT INTO callbacks ({', '.join(COPIED_CALLBACK_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in COPIED_CALLBACK_COLUMNS)})"
)

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

from service.storage import checkpoints, events, rows, sqlite
from service.storage.appends import INSERT_EVENT, UPSERT_TICKET
from service.storage.outbox import CALLBACK_COLUMNS
from service.timestamps import utc_now
from statemachine.events import Event
from statemachine.projection import Projection

__all__ = [
    "COPIED_CALLBACK_COLUMNS",
    "NotEmpty",
    "Replaying",
    "copy_log",
    "owed_callbacks",
]

#: The outbox columns that move with a log: all but a lease, which only its holder knows.
COPIED_CALLBACK_COLUMNS = (*CALLBACK_COLUMNS, "create_position")


class NotEmpty(Exception):
    """The target already holds a log, or anything else: nothing was copied."""


def copy_log(
    source: Any,
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    checkpoint_every: int,
) -> int:
    """Copy the log read from `source` (a connection, inside a snapshot) into a new SQLite
    file at `path`, with a checkpoint every `checkpoint_every` events; how many events.
    Raises `NotEmpty` when `path` holds anything."""
    _refuse_used(path)
    try:
        with contextlib.closing(sqlite.connect_sync(path, readonly=False)) as target:
            target.execute("BEGIN IMMEDIATE")
            try:
                count = _copy(source, target, Replaying(source, progress, checkpoint_every))
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


class Replaying:
    """A log's events on their way to a copy, folded as they pass: the target's `tickets`
    rows are then what the rules derive from exactly the events copied, and its
    checkpoints (derived data, not copied) are made where the service would make them, so
    time travel on the copy starts as near as on the original."""

    def __init__(
        self, source: Any, progress: Callable[[int], None] | None, checkpoint_every: int
    ) -> None:
        self._source = source
        self._progress = progress
        self.projection = Projection()
        self._checkpointing = checkpoints.Checkpointing(self.projection, checkpoint_every)
        self.checkpoints: list[checkpoints.Checkpoint] = []
        self.last_position: dict[str, int] = {}
        self.count = 0

    def events(self) -> Iterator[Event]:
        for event in events.iter_after(self._source):
            self.projection.apply(event)
            if event.ticket_id is not None:
                self.last_position[event.ticket_id] = event.position
            if made := self._checkpointing.passed(event.position, event.ticket_id):
                self.checkpoints.append(made)
            self.count += 1
            if self._progress is not None and self.count % 100_000 == 0:
                self._progress(self.count)
            yield event

    def ticket_rows(self) -> Iterator[tuple[Any, ...]]:
        """The rebuilt tickets, once every event has gone past."""
        for ticket_id, stream in self.projection.streams.items():
            if stream.ticket is not None:
                yield rows.ticket_row(ticket_id, stream, self.last_position[ticket_id])

    def checkpoint_rows(self) -> Iterator[tuple[Any, ...]]:
        """The checkpoints made on the way, once every event has gone past, as rows."""
        made_at = utc_now()
        for checkpoint in self.checkpoints:
            yield (*checkpoint, made_at)


def _copy(source: Any, target: sqlite3.Connection, replaying: Replaying) -> int:
    target.executemany(INSERT_EVENT, (rows.event_row(event) for event in replaying.events()))
    target.executemany(UPSERT_TICKET, replaying.ticket_rows())
    target.executemany(checkpoints.INSERT_CHECKPOINT, replaying.checkpoint_rows())
    target.executemany(_INSERT_CALLBACK, owed_callbacks(source))
    return replaying.count


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

"""What the single writer writes, and what it reads back before deciding a batch (SQLite).

A batch's writes are queued on the writer's connection together (see
`service.ledger.writer`) and awaited once. On SQLite no lock is taken before deciding:
the positions the writer assigns are the log's primary key, so if another process
appended meanwhile the insert fails with `MOVED` and the batch runs again.
`service.storage.postgres.appends` has the same names for PostgreSQL; the shapes both
take and give (`Writes`, `Began`, `Loaded`) are here.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    import aiosqlite

from service.storage.outbox import STATEMENTS, Statement
from service.storage.rows import EVENT_COLUMNS, STREAM_COLUMNS, TICKET_COLUMNS

__all__ = [
    "INSERT_EVENT",
    "LOCKS",
    "MOVED",
    "UPSERT_TICKET",
    "Began",
    "Loaded",
    "Prebuilt",
    "Rest",
    "Writes",
    "begin",
    "broken",
    "load",
    "rollback",
    "write",
]

#: Raised by `write` when another process appended since the writer read the tail.
MOVED: type[Exception] = sqlite3.IntegrityError

_CONTENT_COLUMNS = ("title", "details", "custom_tags")

INSERT_EVENT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
)
# The row, updated in place when the ticket exists: an update leaves the index entries
# of unchanged columns, and the tags (a trigger, when they change), alone. A content
# column given as NULL keeps the stored value, read in the same statement: the row must
# be whole before the conflict is found, since NOT NULL is checked first.
UPSERT_TICKET = (
    f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)}) VALUES ("
    + ", ".join(
        f"COALESCE(?{n}, (SELECT {name} FROM tickets WHERE ncentral_ticket_id = ?1))"
        if name in _CONTENT_COLUMNS
        else f"?{n}"
        for n, name in enumerate(TICKET_COLUMNS, start=1)
    )
    + ") ON CONFLICT (ncentral_ticket_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in TICKET_COLUMNS[1:])
)


class Rest(NamedTuple):
    """A batch's writes after its events: the tickets' rows (`rows.ticket_row`), the other
    statements it owes, and its last position (where the next batch chains on)."""

    tickets: Sequence[tuple[Any, ...]]
    statements: Sequence[Statement]
    last_position: int


class Writes(Protocol):
    """One batch's writes, as `write` takes them: its events first, then the rest
    (asked for once every event has been taken)."""

    def __len__(self) -> int:
        """How many requests the batch holds (an event or two each): how to send them."""
        ...

    def events(self) -> Iterator[tuple[Any, ...]]:
        """Each event's row (`rows.event_row`), in position order."""
        ...

    def rest(self) -> Rest: ...


class Prebuilt:
    """`Writes` whose rows are all built already (the bench's baseline, tests)."""

    def __init__(
        self,
        rows: Sequence[tuple[Any, ...]],
        tickets: Sequence[tuple[Any, ...]],
        statements: Sequence[Statement],
        last_position: int,
    ) -> None:
        self.rows, self.tickets = rows, tickets
        self.statements, self.last_position = statements, last_position

    def __len__(self) -> int:
        return len(self.rows)

    def events(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def rest(self) -> Rest:
        return Rest(self.tickets, self.statements, self.last_position)


class Began(NamedTuple):
    """What `begin` learnt: the log's tail, and the tickets whose events came after `after`.

    `tail` is None when nothing was read (SQLite); `moved` is None when every cached
    ticket must be read again.
    """

    tail: Any | None
    moved: set[str] | None


#: `begin` takes no lock and reads nothing: the primary key catches a moved log.
LOCKS = False


async def begin(
    db: aiosqlite.Connection,
    after: int | None,
    waiting: Callable[[], None] = lambda: None,
    *,
    locked: bool = False,
) -> Began:
    """Nothing to do before deciding on SQLite: the primary key catches a moved log, and
    no lock is waited for (so `waiting` is never called).

    With `locked` (a batch the log refused, decided again), the file's write lock is taken
    first and held until COMMIT: what the writer reads for that batch, the tail included,
    is then the log as its writes will find it. Without it, another process busy on the
    same file could append between each read and write, and refuse the batch every time.
    """
    if locked:
        await db.execute("BEGIN IMMEDIATE")
    return Began(None, set())


async def write(
    db: aiosqlite.Connection,
    writes: Writes,
    queued: Callable[[], None] = lambda: None,
    *,
    begin_next: bool = False,
) -> Began | None:
    """The batch's writes and its COMMIT, in one turn of the connection's thread.

    The batch is decided whole first, on the event loop: the thread must not run the
    writer's code. Nothing is begun for the next batch (`begin_next` is for PostgreSQL's
    lock): None.

    The writer's connection opens `BEGIN IMMEDIATE` itself before the first write, so no
    write can land outside the transaction. Everything goes to the thread as one call:
    each separate call would wait for a turn of the busy event loop before the next could
    start (a commit queued after its writes waited ~3 ms a batch under load, measured),
    and the file's write lock would be held across those waits.
    """
    events = list(writes.events())
    tickets, statements, _ = writes.rest()
    queued()  # its answers go out while the thread writes (see the writer's docstring)
    await _on_writer_thread(db, _Writing(events, tickets, statements))
    return None


async def rollback(db: aiosqlite.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        await db.rollback()


def broken(db: aiosqlite.Connection) -> bool:
    """Whether the connection must be opened again: never, for a file."""
    return False


class Loaded(NamedTuple):
    """Rows read for a batch: the log's tail (None when not asked or empty), tickets, versions."""

    tail: Any | None
    tickets: list[Any]
    versions: dict[str, int]


async def load(db: aiosqlite.Connection, ticket_ids: Iterable[str], *, with_tail: bool) -> Loaded:
    """The standing (`STREAM_COLUMNS`) and last stream version of `ticket_ids`; the tail if asked.

    Queued as one round trip. The tail row has `position`, `hash` and `recorded_at`, or is
    None on an empty log. A ticket with events but no `tickets` row (only refusals so far)
    still has a version.
    """
    ids = sorted(ticket_ids)
    queries = [db.execute_fetchall(_SELECT_TAIL)] if with_tail else []
    if ids:
        queries.append(db.execute_fetchall(_select_streams(len(ids)), ids))
        queries.append(db.execute_fetchall(_select_versions(len(ids)), ids))
    found = [list(rows) for rows in await asyncio.gather(*queries)]
    tail_rows = found.pop(0) if with_tail else []
    tickets, versions = found or ([], [])
    return Loaded(
        tail_rows[0] if tail_rows else None,
        tickets,
        {row["ticket_id"]: row["version"] for row in versions if row["version"] is not None},
    )


def _select_streams(count: int) -> str:
    marks = ", ".join("?" for _ in range(count))
    return f"SELECT {', '.join(STREAM_COLUMNS)} FROM tickets WHERE ncentral_ticket_id IN ({marks})"


def _select_versions(count: int) -> str:
    """Each ticket's last version by one seek of `events_by_ticket` (SQLite's MAX on an index
    prefix), not a walk of its whole history, which a GROUP BY would be: a long-lived
    ticket's reload would cost as many index entries as it has events. NULL: no events."""
    asked = ", ".join("(?)" for _ in range(count))
    return (
        f"WITH asked(ticket_id) AS (VALUES {asked}) SELECT ticket_id,"
        " (SELECT MAX(stream_version) FROM events WHERE events.ticket_id = asked.ticket_id)"
        " AS version FROM asked"
    )


class _Writing:
    """One batch's writes and its COMMIT, run on the connection's thread.

    It lets go of the rows once run: aiosqlite's thread keeps its last call until the
    next one arrives, and a quiet ledger must not keep a batch of N-central's text.
    """

    def __init__(
        self,
        events: Sequence[tuple[Any, ...]],
        tickets: Sequence[tuple[Any, ...]],
        statements: Sequence[Statement],
    ) -> None:
        self.events, self.tickets, self.statements = events, tickets, statements

    def __call__(self, db: sqlite3.Connection) -> None:
        try:
            db.executemany(INSERT_EVENT, self.events)
            if self.tickets:
                db.executemany(UPSERT_TICKET, self.tickets)
            for name, params in self.statements:
                db.execute(STATEMENTS[name], params)
            db.commit()
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.rollback()
            raise
        finally:
            self.events = self.tickets = self.statements = ()


async def _on_writer_thread(db: aiosqlite.Connection, writes: _Writing) -> None:
    """`writes(connection)` run on the connection's own thread.

    aiosqlite runs every call of a connection on one thread, in order; its public methods
    are one statement each, so the batch goes through the same queue they use.
    """
    await db._execute(writes, db._conn)


_SELECT_TAIL = "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"

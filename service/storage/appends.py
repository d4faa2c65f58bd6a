"""What the single writer writes, and what it reads back before deciding a batch (SQLite).

A batch's writes are made on the event loop's thread and its COMMIT on the connection's
own (see `write`), awaited once. On SQLite no lock is taken before deciding:
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
    """The batch's writes on the event loop's own thread, then its COMMIT on the
    connection's.

    The batch is decided whole first, on the event loop: the thread must not run the
    writer's code. Nothing is begun for the next batch (`begin_next` is for PostgreSQL's
    lock): None.

    The inserts are CPU work that SQLite does with the GIL let go around every row. On
    the connection's thread each row then waited to take the GIL back from the busy event
    loop, and the thread waited 0.6 ms for it before a batch could start (bench/results.md,
    round 11). Run here they wait for nothing, and only the COMMIT, whose fsync holds
    no GIL, goes to the thread (one hand-over a batch, not one a row): the loop sends
    the batch's answers and reads the next requests meanwhile. N-central ingest at 64
    connections went 1.2-1.3x faster, with 12-16% less CPU a request.

    The loop never waits for the file's write lock: the transaction is begun here only if
    the lock is free at once (`_begun_at_once`). When another process holds it (a shell
    tool, the checkpoint process), the whole batch goes to the thread as before, which
    waits up to the busy timeout while the loop goes on serving.
    """
    events = list(writes.events())
    tickets, statements, _ = writes.rest()
    writing, conn = _Writing(events, tickets, statements), db._conn
    if _begun_at_once(conn):
        writing.insert(conn)
        queued()  # its answers go out while the thread commits (see the writer's docstring)
        await _on_writer_thread(db, _commit)
    else:
        queued()
        await _on_writer_thread(db, writing)
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
    """One batch's writes: inserted where they are (`insert`), or run as one call on the
    connection's thread with its COMMIT (when the transaction must wait for the lock).

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
        self.insert(db)
        _commit(db)

    def insert(self, db: sqlite3.Connection) -> None:
        """Every write of the batch, in the open transaction; rolled back if one fails."""
        try:
            db.executemany(INSERT_EVENT, self.events)
            if self.tickets:
                db.executemany(UPSERT_TICKET, self.tickets)
            for name, params in self.statements:
                db.execute(STATEMENTS[name], params)
        except BaseException:
            _roll_back(db)
            raise
        finally:
            self.events = self.tickets = self.statements = ()


def _commit(db: sqlite3.Connection) -> None:
    try:
        db.commit()
    except BaseException:
        _roll_back(db)
        raise


def _roll_back(db: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        db.rollback()


def _begun_at_once(db: sqlite3.Connection) -> bool:
    """Whether the batch's transaction is open: begun under the lock already (a batch
    decided again, `begin(locked=True)`), or begun now because the file's write lock was
    free. Not waited for: the busy timeout is set to nothing for this one BEGIN."""
    if db.in_transaction:
        return True
    waits = db.execute("PRAGMA busy_timeout").fetchone()[0]
    db.execute("PRAGMA busy_timeout = 0")
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:  # locked by another process
        return False
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(waits)}")
    return True


async def _on_writer_thread(
    db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], None]
) -> None:
    """`work(connection)` run on the connection's own thread.

    aiosqlite runs every call of a connection on one thread, in order; its public methods
    are one statement each, so a batch's call goes through the same queue they use.
    """
    await db._execute(work, db._conn)


_SELECT_TAIL = "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"

"""The SQLite file: schema, migrations, PRAGMAs and the rows the ledger writes.

The `events` table is the truth and refuses UPDATE and DELETE. `tickets` is a projection of
it, rewritten in the same transaction as the events it follows; `callbacks` is the outbox
of deliveries owed to N-central. WAL lets readers (the API, the CLI, an auditor's sqlite3
shell) read while the single writer writes; `synchronous=FULL` makes each commit durable.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from service import files
from statemachine.events import Event
from statemachine.projection import LastAccepted, Stream, Ticket
from statemachine.ticket import State

__all__ = [
    "EVENT_COLUMNS",
    "INSERT_EVENT",
    "UPSERT_TICKET",
    "StoreUnavailable",
    "connect",
    "connect_sync",
    "event_from_row",
    "event_row",
    "iter_events",
    "stream_from_row",
    "ticket_row",
]

EVENT_COLUMNS = Event.__struct_fields__


class StoreUnavailable(Exception):
    """The database cannot take a write now (locked, read-only, full): try again later."""


async def connect(
    path: Path, *, busy_timeout_ms: int = 5000, writer: bool = False
) -> aiosqlite.Connection:
    """An async connection with the schema in place; creates the file and its folder.

    The writer's connection opens `BEGIN IMMEDIATE` by itself before its first write, so
    that a write can never land outside a transaction; other connections are autocommit.
    """
    files.prepare_database(path)
    db = await aiosqlite.connect(path, isolation_level="IMMEDIATE" if writer else None)
    try:
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await db.executescript(_PRAGMAS)
        await db.executescript(_migration_script(await _user_version(db)))
    except BaseException:
        await db.close()
        raise
    return db


def connect_sync(path: Path, *, readonly: bool = True) -> sqlite3.Connection:
    """A plain connection for the command-line tools; read-only unless asked otherwise."""
    if readonly:
        if not path.exists():
            raise FileNotFoundError(f"no event log at {path}")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    else:
        files.prepare_database(path)
        db = sqlite3.connect(path, isolation_level=None)
        db.executescript(_PRAGMAS)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.executescript(_migration_script(version))
    db.execute("PRAGMA busy_timeout = 5000")
    return db


def event_row(event: Event) -> tuple[Any, ...]:
    return tuple(getattr(event, name) for name in EVENT_COLUMNS)


def event_from_row(row: tuple[Any, ...]) -> Event:
    return Event(**dict(zip(EVENT_COLUMNS, row, strict=True)))


def iter_events(db: sqlite3.Connection, *, after: int = 0, chunk: int = 5000) -> Iterator[Event]:
    """Every event after a position, in order, a chunk at a time (constant memory)."""
    while True:
        rows = db.execute(_SELECT_EVENTS_AFTER, (after, chunk)).fetchall()
        for row in rows:
            yield event_from_row(row)
        if len(rows) < chunk:
            return
        after = rows[-1][0]


def ticket_row(ticket_id: str, stream: Stream, position: int) -> tuple[Any, ...]:
    ticket = stream.ticket
    assert ticket is not None
    return (
        ticket_id,
        ticket.external_ticket_id,
        ticket.state.value,
        ticket.title,
        ticket.details,
        _encode(ticket.custom_tags),
        ticket.created_at,
        ticket.updated_at,
        stream.version,
        position,
        _encode(ticket.last_accepted) if ticket.last_accepted else None,
    )


def stream_from_row(row: tuple[Any, ...]) -> Stream:
    """A `tickets` row (in TICKET_COLUMNS order) back into the stream it projects."""
    (tid, external, state, title, details, tags, created, updated, version, _, last) = row
    ticket = Ticket(
        ncentral_ticket_id=tid,
        external_ticket_id=external,
        state=State(state),
        title=title,
        details=details,
        custom_tags=msgspec.json.decode(tags),
        created_at=created,
        updated_at=updated,
        last_accepted=msgspec.json.decode(last, type=LastAccepted) if last else None,
    )
    return Stream(version, ticket)


TICKET_COLUMNS = (
    "ncentral_ticket_id",
    "external_ticket_id",
    "state",
    "title",
    "details",
    "custom_tags",
    "created_at",
    "updated_at",
    "stream_version",
    "last_position",
    "last_accepted",
)

INSERT_EVENT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
)
UPSERT_TICKET = (
    f"INSERT OR REPLACE INTO tickets ({', '.join(TICKET_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in TICKET_COLUMNS)})"
)
SELECT_TAIL = "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"

_SELECT_EVENTS_AFTER = (
    f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE position > ? ORDER BY position LIMIT ?"
)
_encode = msgspec.json.encode

_PRAGMAS = """
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = OFF;
"""

# Each entry moves the schema one version forward; never edit one that has shipped.
_MIGRATIONS = [
    """
    CREATE TABLE events (
        position        INTEGER PRIMARY KEY,
        ticket_id       TEXT,
        stream_version  INTEGER,
        action          TEXT NOT NULL,
        outcome         TEXT NOT NULL,
        state_before    TEXT,
        state_after     TEXT,
        recorded_at     TEXT NOT NULL,
        request_id      TEXT,
        actor           TEXT NOT NULL,
        payload         TEXT NOT NULL,
        response        TEXT,
        schema_version  INTEGER NOT NULL,
        prev_hash       TEXT NOT NULL,
        hash            TEXT NOT NULL
    );
    CREATE UNIQUE INDEX events_by_ticket ON events (ticket_id, stream_version);
    CREATE INDEX events_by_action ON events (action, position);
    CREATE INDEX events_by_outcome ON events (outcome, position);
    CREATE INDEX events_by_actor ON events (actor, position);
    CREATE INDEX events_by_time ON events (recorded_at, position);
    CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events is append-only: UPDATE refused'); END;
    CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events is append-only: DELETE refused'); END;

    CREATE TABLE tickets (
        ncentral_ticket_id  TEXT PRIMARY KEY,
        external_ticket_id  TEXT NOT NULL UNIQUE,
        state               TEXT NOT NULL,
        title               TEXT NOT NULL,
        details             TEXT NOT NULL,
        custom_tags         TEXT NOT NULL,
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL,
        stream_version      INTEGER NOT NULL,
        last_position       INTEGER NOT NULL,
        last_accepted       TEXT
    );
    CREATE INDEX tickets_by_state ON tickets (state, updated_at);
    CREATE INDEX tickets_by_update ON tickets (updated_at);
    """,
    # Audit queries: a ticket's events in log order, tickets paged by id within a state,
    # and a tag table kept by triggers so `tag=site:A` is an index lookup, not a JSON scan.
    """
    CREATE INDEX events_by_ticket_position ON events (ticket_id, position);
    CREATE INDEX tickets_by_state_id ON tickets (state, ncentral_ticket_id);
    CREATE TABLE ticket_tags (
        ncentral_ticket_id  TEXT NOT NULL,
        key                 TEXT NOT NULL,
        value               TEXT NOT NULL,
        PRIMARY KEY (ncentral_ticket_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX ticket_tags_by_tag ON ticket_tags (key, value, ncentral_ticket_id);
    CREATE TRIGGER tickets_tags_follow AFTER INSERT ON tickets BEGIN
        DELETE FROM ticket_tags WHERE ncentral_ticket_id = NEW.ncentral_ticket_id;
        INSERT INTO ticket_tags SELECT NEW.ncentral_ticket_id, key, value
            FROM json_each(NEW.custom_tags);
    END;
    INSERT INTO ticket_tags SELECT t.ncentral_ticket_id, j.key, j.value
        FROM tickets AS t, json_each(t.custom_tags) AS j;
    """,
    # The outbox of callbacks owed to N-central (service/outbox.py says who writes what).
    """
    CREATE TABLE callbacks (
        ncentral_ticket_id  TEXT PRIMARY KEY,
        external_ticket_id  TEXT NOT NULL,
        ticket_url          TEXT NOT NULL,
        status              TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts            INTEGER NOT NULL DEFAULT 0,
        next_attempt_at     TEXT,
        last_error          TEXT,
        claim               TEXT,
        lease_until         TEXT,
        create_position     INTEGER NOT NULL,
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL
    );
    CREATE INDEX callbacks_due ON callbacks (status, next_attempt_at);
    CREATE INDEX callbacks_by_claim ON callbacks (claim) WHERE claim IS NOT NULL;
    """,
]


async def _user_version(db: aiosqlite.Connection) -> int:
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


def _migration_script(version: int) -> str:
    """One transaction that brings a file at `version` up to date; empty when it is."""
    pending = _MIGRATIONS[version:]
    if not pending:
        return ""
    return f"BEGIN IMMEDIATE; {''.join(pending)} PRAGMA user_version = {len(_MIGRATIONS)}; COMMIT;"

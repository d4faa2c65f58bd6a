"""The PostgreSQL schema: the SQLite schema's numbered migrations, in PostgreSQL's dialect.

Migration N here builds what migration N of `service.storage.schema` builds (the same
tables, columns in the same order, the same indexes), so a log moves between backends
row for row and one version number means one schema on both. Columns keep SQLite's
values as they are: times stay the log's text format and JSON stays text, because the
hash chain covers those exact strings. Where SQLite keeps `PRAGMA user_version`,
`schema_version` holds one row per migration applied, with when.

Several replicas may start at once on one database, so `migrate` applies the pending
migrations in one transaction under a transaction-scoped advisory lock: the second
replica waits, then finds nothing left to do.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import scalar_row

__all__ = ["MIGRATIONS", "MIGRATION_LOCK", "migrate", "migrate_async"]

# The advisory lock key (any bigint, unique among the service's advisory locks): the bytes
# of "psa-migr". Advisory locks are per database, so logs in other databases never wait.
MIGRATION_LOCK = int.from_bytes(b"psa-migr", "big")

# Each entry moves the schema one version forward; never edit one that has shipped.
MIGRATIONS = [
    """
    CREATE TABLE events (
        position        BIGINT PRIMARY KEY,
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

    -- Refused per statement, so even an UPDATE or DELETE that matches no row fails, and
    -- TRUNCATE (which fires no row trigger) too. Class 23 (integrity) as SQLite's ABORT.
    CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'events is append-only: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$;
    CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
    CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
    CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
    -- ALWAYS: `SET session_replication_role = replica` (a restore tool's way to skip
    -- triggers) does not switch these off.
    ALTER TABLE events ENABLE ALWAYS TRIGGER events_refuse_update;
    ALTER TABLE events ENABLE ALWAYS TRIGGER events_refuse_delete;
    ALTER TABLE events ENABLE ALWAYS TRIGGER events_refuse_truncate;

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
        last_position       BIGINT NOT NULL,
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
    );
    CREATE INDEX ticket_tags_by_tag ON ticket_tags (key, value, ncentral_ticket_id);

    -- The writer upserts a ticket once per event; its tags are rewritten only when they
    -- changed (the WHEN below), and a deleted ticket takes its tags with it.
    CREATE FUNCTION tickets_tags_follow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            DELETE FROM ticket_tags WHERE ncentral_ticket_id = OLD.ncentral_ticket_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO ticket_tags (ncentral_ticket_id, key, value)
                SELECT NEW.ncentral_ticket_id, tag.key, tag.value
                FROM jsonb_each_text(NEW.custom_tags::jsonb) AS tag;
        END IF;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER tickets_tags_follow AFTER INSERT OR DELETE ON tickets
        FOR EACH ROW EXECUTE FUNCTION tickets_tags_follow();
    CREATE TRIGGER tickets_tags_change AFTER UPDATE ON tickets
        FOR EACH ROW
        WHEN (OLD.custom_tags IS DISTINCT FROM NEW.custom_tags
              OR OLD.ncentral_ticket_id IS DISTINCT FROM NEW.ncentral_ticket_id)
        EXECUTE FUNCTION tickets_tags_follow();
    INSERT INTO ticket_tags (ncentral_ticket_id, key, value)
        SELECT t.ncentral_ticket_id, tag.key, tag.value
        FROM tickets AS t, jsonb_each_text(t.custom_tags::jsonb) AS tag;
    """,
    # The outbox of callbacks owed to N-central (service/ledger/outbox.py says who writes what).
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
        create_position     BIGINT NOT NULL,
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL
    );
    CREATE INDEX callbacks_due ON callbacks (status, next_attempt_at);
    CREATE INDEX callbacks_by_claim ON callbacks (claim) WHERE claim IS NOT NULL;
    """,
    # SQLite's version 4 taught its tags trigger to keep NUL characters, which its json_each
    # cut short. jsonb_each_text has no such flaw (and PostgreSQL text holds no NUL at all),
    # so here the version changes nothing and only keeps the numbering of both dialects one.
    "SELECT 1;",
    # Checkpoints: every ticket at a position, for time travel (derived, never chained).
    """
    CREATE TABLE checkpoints (
        position    BIGINT PRIMARY KEY,
        tickets     INTEGER NOT NULL,
        digest      TEXT NOT NULL,
        snapshot    BYTEA NOT NULL,
        created_at  TEXT NOT NULL
    );
    """,
    # Text compares byte for byte, as in SQLite, whatever collation the database was
    # created with: ticket pages, their cursors and every range on text mean one order on
    # both backends. Altering the columns rebuilds their indexes; the tags trigger names
    # two of the columns in its WHEN, so it is made again around the change.
    """
    DROP TRIGGER tickets_tags_change ON tickets;
    DO $$
    DECLARE
        col record;
    BEGIN
        FOR col IN
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = current_schema() AND data_type = 'text'
              AND table_name IN ('events', 'tickets', 'ticket_tags', 'callbacks', 'checkpoints')
        LOOP
            EXECUTE format('ALTER TABLE %I ALTER COLUMN %I TYPE text COLLATE "C"',
                           col.table_name, col.column_name);
        END LOOP;
    END
    $$;
    CREATE TRIGGER tickets_tags_change AFTER UPDATE ON tickets
        FOR EACH ROW
        WHEN (OLD.custom_tags IS DISTINCT FROM NEW.custom_tags
              OR OLD.ncentral_ticket_id IS DISTINCT FROM NEW.ncentral_ticket_id)
        EXECUTE FUNCTION tickets_tags_follow();
    """,
    # SQLite's version 7 has its tags follow an update only when they change, as the
    # trigger of version 2 here always did: nothing to do but keep the numbering one.
    "SELECT 1;",
    # SQLite's version 8 decodes tags without its NUL shield where they hold no NUL; here
    # jsonb_each_text needs none: nothing to do but keep the numbering one.
    "SELECT 1;",
]

# Read committed, set explicitly: each statement after the lock must see what the replica
# that held the lock before us committed, whatever the connection's default isolation.
_BEGIN = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"
_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_VERSIONS = """
    CREATE TABLE IF NOT EXISTS schema_version (
        version     INTEGER PRIMARY KEY,
        applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
    )
"""
# Read through a cursor of its own, so the connection's row factory does not matter.
_CURRENT = "SELECT max(version) FROM schema_version"
_APPLIED = "INSERT INTO schema_version (version) VALUES (%s)"


def migrate(db: psycopg.Connection[Any]) -> int:
    """Bring the database up to date in one transaction; how many migrations were applied.

    `db` must not be inside a transaction. Safe to call from several processes at once.
    """
    with db.transaction():
        db.execute(_BEGIN)
        db.execute(_LOCK, (MIGRATION_LOCK,))
        db.execute(_VERSIONS)
        pending = _pending(db.cursor(row_factory=scalar_row).execute(_CURRENT).fetchone())
        for version, script in pending:
            db.execute(script)
            db.execute(_APPLIED, (version,))
    return len(pending)


async def migrate_async(db: psycopg.AsyncConnection[Any]) -> int:
    """`migrate` for the service's async connections: the same statements, awaited."""
    async with db.transaction():
        await db.execute(_BEGIN)
        await db.execute(_LOCK, (MIGRATION_LOCK,))
        await db.execute(_VERSIONS)
        current = db.cursor(row_factory=scalar_row)
        pending = _pending(await (await current.execute(_CURRENT)).fetchone())
        for version, script in pending:
            await db.execute(script)
            await db.execute(_APPLIED, (version,))
    return len(pending)


def _pending(version: int | None) -> list[tuple[int, str]]:
    """The migrations after `version` (None: none applied), each with the version it makes."""
    done = version or 0
    return [(n, MIGRATIONS[n - 1]) for n in range(done + 1, len(MIGRATIONS) + 1)]

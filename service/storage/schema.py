"""The SQLite schema: PRAGMAs and the numbered migrations that build it.

The `events` table is the truth and refuses UPDATE and DELETE. `tickets` is a projection of
it, rewritten in the same transaction as the events it follows; `ticket_tags` follows
`tickets` by trigger; `callbacks` is the outbox of deliveries owed to N-central;
`checkpoints` holds snapshots of the tickets for time travel (derived, never chained). WAL lets
readers (the API, the CLI, an auditor's sqlite3 shell) read while the single writer writes;
`synchronous=FULL` makes each commit durable. `PRAGMA user_version` is the number of
migrations applied; a PostgreSQL schema would keep the same numbering in a table.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "PRAGMAS", "migration_script"]

# SQLite's JSON functions end a string at its first NUL (they pass it on as a C string), so
# json_each would read the tag key "a\u0000x" as "a" and two keys would collide. The tags
# trigger therefore decodes a copy of the JSON in which each `\u0000` escape is spelled as a
# marker pair, and turns the pair back into a NUL after decoding. The marker's own
# occurrences and escaped backslashes are spelled as pairs too, so that no other text (such
# as a backslash followed by "u0000") can pass for a NUL. The JSON is msgspec's, which
# writes non-ASCII characters such as the marker as they are, never as escapes.
_MARK = "char(57344)"  # U+E000, a private-use character


def _shielded(json_text: str) -> str:
    """SQL: `json_text` with the marker, `\\\\` and `\\u0000` spelled as marker pairs."""
    pairs = [(_MARK, "m"), ("'\\\\'", "b"), ("'\\u0000'", "0")]
    for text, letter in pairs:
        json_text = f"replace({json_text}, {text}, {_MARK} || '{letter}')"
    return json_text


def _restored(decoded: str) -> str:
    """SQL: a string json_each decoded from `_shielded` JSON, with each pair undone."""
    pairs = [("char(0)", "0"), ("'\\'", "b"), (_MARK, "m")]
    for text, letter in pairs:
        decoded = f"replace({decoded}, {_MARK} || '{letter}', {text})"
    return decoded


_NUL_ESCAPE = "'\\u0000'"
#: The body of the tags triggers from version 8: the tags as stored, and json_each's
#: reading shielded only where a NUL is escaped in them.
_TAGS_FOLLOW = f"""DELETE FROM ticket_tags WHERE ncentral_ticket_id = NEW.ncentral_ticket_id;
        INSERT INTO ticket_tags
            SELECT NEW.ncentral_ticket_id, key, value FROM json_each(NEW.custom_tags)
            WHERE instr(NEW.custom_tags, {_NUL_ESCAPE}) = 0;
        INSERT INTO ticket_tags
            SELECT NEW.ncentral_ticket_id, {_restored("key")}, {_restored("value")}
            FROM json_each({_shielded("NEW.custom_tags")})
            WHERE instr(NEW.custom_tags, {_NUL_ESCAPE}) > 0;"""

PRAGMAS = """
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = OFF;
"""

# Each entry moves the schema one version forward; never edit one that has shipped.
MIGRATIONS = [
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
        create_position     INTEGER NOT NULL,
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL
    );
    CREATE INDEX callbacks_due ON callbacks (status, next_attempt_at);
    CREATE INDEX callbacks_by_claim ON callbacks (claim) WHERE claim IS NOT NULL;
    """,
    # Tags with a NUL in a key or value, kept whole (see _shielded), and the table rebuilt.
    f"""
    DROP TRIGGER tickets_tags_follow;
    CREATE TRIGGER tickets_tags_follow AFTER INSERT ON tickets BEGIN
        DELETE FROM ticket_tags WHERE ncentral_ticket_id = NEW.ncentral_ticket_id;
        INSERT INTO ticket_tags
            SELECT NEW.ncentral_ticket_id, {_restored("key")}, {_restored("value")}
            FROM json_each({_shielded("NEW.custom_tags")});
    END;
    DELETE FROM ticket_tags;
    INSERT INTO ticket_tags
        SELECT t.ncentral_ticket_id, {_restored("j.key")}, {_restored("j.value")}
        FROM tickets AS t, json_each({_shielded("t.custom_tags")}) AS j;
    """,
    # Checkpoints (service/storage/checkpoints.py): every ticket at a position, so time
    # travel folds only what followed. Derived data, outside the chain, safe to delete.
    """
    CREATE TABLE checkpoints (
        position    INTEGER PRIMARY KEY,
        tickets     INTEGER NOT NULL,
        digest      TEXT NOT NULL,
        snapshot    BLOB NOT NULL,
        created_at  TEXT NOT NULL
    );
    """,
    # PostgreSQL's version 6 makes its text columns compare byte for byte, which SQLite's
    # always do: here it changes nothing and only keeps the numbering of both dialects one.
    "SELECT 1;",
    # The writer updates a ticket in place (an upsert) instead of replacing its row, which
    # rewrote every index entry and the tags at each event: the tags now follow an update
    # only when they changed, as on PostgreSQL. The insert trigger stays for new rows.
    f"""
    CREATE TRIGGER tickets_tags_change AFTER UPDATE OF custom_tags ON tickets
        WHEN NEW.custom_tags IS NOT OLD.custom_tags BEGIN
        DELETE FROM ticket_tags WHERE ncentral_ticket_id = NEW.ncentral_ticket_id;
        INSERT INTO ticket_tags
            SELECT NEW.ncentral_ticket_id, {_restored("key")}, {_restored("value")}
            FROM json_each({_shielded("NEW.custom_tags")});
    END;
    """,
    # The shielded decoding (see _shielded) only where the tags hold a NUL: a new ticket's
    # four tags cost ~80 us of the writer's thread through it, ~68 without (bench/results.md,
    # "Ingest, round seven"). Without a `\u0000` escape in the JSON no decoded string holds
    # a NUL, and json_each reads it whole. The guards name only NEW, so SQLite tests them
    # once, before reading any JSON.
    f"""
    DROP TRIGGER tickets_tags_follow;
    DROP TRIGGER tickets_tags_change;
    CREATE TRIGGER tickets_tags_follow AFTER INSERT ON tickets BEGIN
        {_TAGS_FOLLOW}
    END;
    CREATE TRIGGER tickets_tags_change AFTER UPDATE OF custom_tags ON tickets
        WHEN NEW.custom_tags IS NOT OLD.custom_tags BEGIN
        {_TAGS_FOLLOW}
    END;
    """,
]


def migration_script(version: int) -> str:
    """One transaction that brings a file at `version` up to date; empty when it is."""
    pending = MIGRATIONS[version:]
    if not pending:
        return ""
    return f"BEGIN IMMEDIATE; {''.join(pending)} PRAGMA user_version = {len(MIGRATIONS)}; COMMIT;"

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

__all__ = ["MIGRATIONS", "PRAGMAS", "TEXT_NUL_MARK", "migration_script"]

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


#: What `tickets_text.nul` holds for a ticket with a NUL in its title or details: three
#: characters, so that the trigram tokenizer indexes them as one trigram.
TEXT_NUL_MARK = "\u2400" * 3  # SYMBOL FOR NULL


def _nul_mark(row: str) -> str:
    """SQL: `TEXT_NUL_MARK` when `row`'s title or details holds a NUL (bytes, as text stops)."""
    has_nul = " OR ".join(
        f"instr(CAST({row}.{c} AS BLOB), x'00') > 0" for c in ("title", "details")
    )
    return f"CASE WHEN {has_nul} THEN '{TEXT_NUL_MARK}' ELSE '' END"


# A trigger's statements giving NEW's ticket its index entry (its row, then its text).
# Not `INSERT OR IGNORE`: inside a trigger the firing statement's conflict policy wins,
# and the writer's upsert would turn a second indexing of one ticket into an error.
_reindex = f"""
        INSERT INTO tickets_text_rows (ncentral_ticket_id)
            SELECT NEW.ncentral_ticket_id WHERE NOT EXISTS (SELECT 1 FROM tickets_text_rows
                WHERE ncentral_ticket_id = NEW.ncentral_ticket_id);
        DELETE FROM tickets_text WHERE rowid =
            (SELECT row FROM tickets_text_rows WHERE ncentral_ticket_id = NEW.ncentral_ticket_id);
        INSERT INTO tickets_text (rowid, title, details, nul)
            SELECT row, NEW.title, NEW.details, {_nul_mark("NEW")}
            FROM tickets_text_rows WHERE ncentral_ticket_id = NEW.ncentral_ticket_id;"""

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
    # The ticket list's text filter (storage/activity.py): a trigram index of each ticket's
    # title and details, so a substring is found without reading every ticket. A ticket's
    # rowid is no stable key (writers before version 7 replaced its row at every event), so
    # the index keys each ticket by a row of its own in `tickets_text_rows`, rewritten when the
    # title or details change (most events change neither). FTS5 indexes a text only up
    # to its first NUL: a ticket with a NUL in either column is marked in `nul`, and the
    # filter always takes marked tickets as candidates.
    f"""
    CREATE TABLE tickets_text_rows (
        row                 INTEGER PRIMARY KEY,
        ncentral_ticket_id  TEXT NOT NULL UNIQUE
    );
    CREATE VIRTUAL TABLE tickets_text USING fts5(title, details, nul, tokenize = 'trigram');
    CREATE TRIGGER tickets_text_follow BEFORE INSERT ON tickets
        WHEN NOT EXISTS (SELECT 1 FROM tickets WHERE ncentral_ticket_id = NEW.ncentral_ticket_id
                         AND title IS NEW.title AND details IS NEW.details)
    BEGIN {_reindex}
    END;
    CREATE TRIGGER tickets_text_change AFTER UPDATE OF title, details ON tickets
        WHEN OLD.title IS NOT NEW.title OR OLD.details IS NOT NEW.details
    BEGIN {_reindex}
    END;
    INSERT INTO tickets_text_rows (ncentral_ticket_id) SELECT ncentral_ticket_id FROM tickets;
    INSERT INTO tickets_text (rowid, title, details, nul)
        SELECT r.row, t.title, t.details, {_nul_mark("t")}
        FROM tickets AS t JOIN tickets_text_rows AS r USING (ncentral_ticket_id);
    """,
]


def migration_script(version: int) -> str:
    """One transaction that brings a file at `version` up to date; empty when it is."""
    pending = MIGRATIONS[version:]
    if not pending:
        return ""
    return f"BEGIN IMMEDIATE; {''.join(pending)} PRAGMA user_version = {len(MIGRATIONS)}; COMMIT;"

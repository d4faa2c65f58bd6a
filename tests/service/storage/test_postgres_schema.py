"""The PostgreSQL schema, on a real server: SQLite's tables in PostgreSQL's dialect.

What a user of either backend would notice: the same numbered versions build the same
tables, columns and indexes (so a log moves across row for row), migrations run once
however many replicas start together, the log refuses to be rewritten, and the tag index
follows the tickets it indexes.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import msgspec
import psycopg
import pytest

from service.storage import schema as sqlite_schema
from service.storage.postgres import schema
from service.storage.rows import EVENT_COLUMNS, TICKET_COLUMNS

TABLES = ("events", "tickets", "ticket_tags", "callbacks")


@pytest.fixture
def db(postgres_url: str) -> Any:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


def versions(db: psycopg.Connection[Any]) -> list[tuple[int, Any]]:
    return db.execute("SELECT version, applied_at FROM schema_version ORDER BY version").fetchall()


def test_migrations_apply_once_then_nothing(db: psycopg.Connection[Any]) -> None:
    assert schema.migrate(db) == len(schema.MIGRATIONS) == len(sqlite_schema.MIGRATIONS)
    applied = versions(db)
    assert [v for v, _ in applied] == list(range(1, len(schema.MIGRATIONS) + 1))

    assert schema.migrate(db) == 0
    assert versions(db) == applied


async def test_the_async_migration_is_the_same(postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        assert await schema.migrate_async(conn) == len(schema.MIGRATIONS)
        assert await schema.migrate_async(conn) == 0
    with psycopg.connect(postgres_url) as conn:
        assert schema.migrate(conn) == 0


@pytest.mark.parametrize("replicas", [2, 4])
def test_replicas_starting_together_migrate_once(postgres_url: str, replicas: int) -> None:
    """Without the advisory lock the second CREATE TABLE events fails; with it, one applies."""
    start = threading.Barrier(replicas)
    results: list[int | BaseException] = []

    def replica() -> None:
        try:
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                start.wait(timeout=30)
                results.append(schema.migrate(conn))
        except BaseException as error:
            results.append(error)

    threads = [threading.Thread(target=replica) for _ in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(results, key=str) == [0] * (replicas - 1) + [len(schema.MIGRATIONS)]
    with psycopg.connect(postgres_url) as conn:
        assert len(versions(conn)) == len(schema.MIGRATIONS)


def test_a_failing_migration_leaves_nothing_half_done(
    db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    schema.migrate(db)
    broken = "CREATE TABLE half_done (n int); SELECT no_such_function();"
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])

    with pytest.raises(psycopg.errors.UndefinedFunction):
        schema.migrate(db)

    assert len(versions(db)) == len(schema.MIGRATIONS) - 1
    assert db.execute("SELECT to_regclass('half_done')").fetchone() == (None,)


def test_each_version_builds_what_sqlite_builds(
    db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upgraded one version at a time, as a database that lived through every release."""
    every = schema.MIGRATIONS
    for version in range(1, len(every) + 1):
        monkeypatch.setattr(schema, "MIGRATIONS", every[:version])
        assert schema.migrate(db) == 1
        lite = sqlite3.connect(":memory:")
        lite.executescript("".join(sqlite_schema.MIGRATIONS[:version]))
        assert postgres_shape(db) == sqlite_shape(lite), f"version {version}"


def test_rows_have_the_columns_the_code_reads(db: psycopg.Connection[Any]) -> None:
    schema.migrate(db)
    columns = postgres_shape(db)["tables"]
    assert tuple(name for name, *_ in columns["events"]) == EVENT_COLUMNS
    assert tuple(name for name, *_ in columns["tickets"]) == TICKET_COLUMNS
    assert columns["events"][0] == ("position", "integer", True)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET outcome = 'forged'",
        "UPDATE events SET outcome = 'forged' WHERE position = 999",
        "DELETE FROM events",
        "DELETE FROM events WHERE position = 999",
        "TRUNCATE events",
    ],
)
def test_the_log_refuses_to_be_rewritten(db: psycopg.Connection[Any], statement: str) -> None:
    schema.migrate(db)
    insert_event(db, position=1)
    verb = statement.split()[0]

    with pytest.raises(psycopg.errors.IntegrityError, match=f"append-only: {verb} refused"):
        db.execute(statement)
    # Not even with triggers switched off the way a restore tool does it.
    with pytest.raises(psycopg.errors.IntegrityError), db.transaction():
        db.execute("SET LOCAL session_replication_role = replica")
        db.execute(statement)

    assert db.execute("SELECT position, outcome FROM events").fetchall() == [(1, "accepted")]


def test_the_log_still_takes_appends(db: psycopg.Connection[Any]) -> None:
    schema.migrate(db)
    insert_event(db, position=1)
    insert_event(db, position=2)
    with pytest.raises(psycopg.errors.UniqueViolation):
        insert_event(db, position=2)
    assert db.execute("SELECT count(*) FROM events").fetchone() == (2,)


def test_ticket_tags_follow_tickets(db: psycopg.Connection[Any]) -> None:
    schema.migrate(db)
    upsert_ticket(db, "100", {"site": "A", "team": "ops"})
    upsert_ticket(db, "200", {"site": "B"})
    assert tags(db) == {("100", "site", "A"), ("100", "team", "ops"), ("200", "site", "B")}
    assert tagged(db, "site", "A") == ["100"]

    upsert_ticket(db, "100", {"site": "B"})
    assert tags(db) == {("100", "site", "B"), ("200", "site", "B")}
    assert tagged(db, "site", "B") == ["100", "200"]

    # A change that leaves the tags alone does not rewrite them (same row versions).
    before = db.execute("SELECT xmin::text FROM ticket_tags ORDER BY 1").fetchall()
    upsert_ticket(db, "100", {"site": "B"}, state="closed")
    assert db.execute("SELECT xmin::text FROM ticket_tags ORDER BY 1").fetchall() == before

    upsert_ticket(db, "100", {})
    db.execute("DELETE FROM tickets WHERE ncentral_ticket_id = '200'")
    assert tags(db) == set()


def test_upgrading_indexes_the_tags_of_existing_tickets(
    db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    every = schema.MIGRATIONS
    monkeypatch.setattr(schema, "MIGRATIONS", every[:1])
    schema.migrate(db)
    upsert_ticket(db, "100", {"site": "A"})

    monkeypatch.setattr(schema, "MIGRATIONS", every)
    schema.migrate(db)
    assert tags(db) == {("100", "site", "A")}


# -- helpers ------------------------------------------------------------------------------


def insert_event(db: psycopg.Connection[Any], *, position: int) -> None:
    row = dict.fromkeys(EVENT_COLUMNS, "x") | {
        "position": position,
        "ticket_id": None,
        "stream_version": None,
        "outcome": "accepted",
        "schema_version": 1,
    }
    marks = ", ".join(["%s"] * len(row))
    db.execute(f"INSERT INTO events ({', '.join(row)}) VALUES ({marks})", list(row.values()))


def upsert_ticket(
    db: psycopg.Connection[Any], ticket_id: str, custom_tags: dict[str, str], state: str = "open"
) -> None:
    """As the writer will: one upsert per event, every column rewritten."""
    row = dict.fromkeys(TICKET_COLUMNS, "x") | {
        "ncentral_ticket_id": ticket_id,
        "external_ticket_id": f"PSA-{ticket_id}",
        "state": state,
        "custom_tags": msgspec.json.encode(custom_tags).decode(),
        "stream_version": 1,
        "last_position": 1,
        "last_accepted": None,
    }
    marks = ", ".join(["%s"] * len(row))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in TICKET_COLUMNS[1:])
    db.execute(
        f"INSERT INTO tickets ({', '.join(row)}) VALUES ({marks})"
        f" ON CONFLICT (ncentral_ticket_id) DO UPDATE SET {updates}",
        list(row.values()),
    )


def tags(db: psycopg.Connection[Any]) -> set[tuple[str, str, str]]:
    return set(db.execute("SELECT ncentral_ticket_id, key, value FROM ticket_tags").fetchall())


def tagged(db: psycopg.Connection[Any], key: str, value: str) -> list[str]:
    rows = db.execute(
        "SELECT ncentral_ticket_id FROM ticket_tags WHERE key = %s AND value = %s ORDER BY 1",
        (key, value),
    )
    return [row[0] for row in rows]


# A schema's shape as both backends can state it: per table, its columns in order (name,
# type family, NOT NULL), primary key and unique constraints; per named index, its table,
# uniqueness, columns and whether it is partial.
TYPE_FAMILY = {
    **{"INTEGER": "integer", "TEXT": "text", "BLOB": "bytes"},
    **{"integer": "integer", "bigint": "integer", "text": "text", "bytea": "bytes"},
}


def sqlite_shape(db: sqlite3.Connection) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    keys: dict[str, Any] = {}
    indexes: dict[str, Any] = {}
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")]
    for table in names:
        info = db.execute(f"PRAGMA table_info({table})").fetchall()
        tables[table] = [(n, TYPE_FAMILY[t], bool(nn or pk)) for _, n, t, nn, _, pk in info]
        primary = [n for *_, pk, n in sorted((pk, n) for _, n, _, _, _, pk in info if pk)]
        unique = []
        for _, name, is_unique, origin, partial in db.execute(f"PRAGMA index_list({table})"):
            cols = [r[2] for r in db.execute(f"PRAGMA index_info({name})")]
            if origin == "u":
                unique.append(cols)
            elif origin == "c":
                indexes[name] = (table, bool(is_unique), cols, bool(partial))
        keys[table] = (primary, sorted(unique))
    return {"tables": tables, "keys": keys, "indexes": indexes}


def postgres_shape(db: psycopg.Connection[Any]) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    keys: dict[str, Any] = {}
    indexes: dict[str, Any] = {}
    columns = db.execute(
        "SELECT table_name, column_name, data_type, is_nullable = 'NO'"
        " FROM information_schema.columns WHERE table_schema = 'public'"
        " AND table_name <> 'schema_version' ORDER BY table_name, ordinal_position"
    )
    for table, name, kind, not_null in columns:
        tables.setdefault(table, []).append((name, TYPE_FAMILY[kind], not_null))
    rows = db.execute(
        """
        SELECT t.relname, i.relname, x.indisunique, x.indisprimary, x.indpred IS NOT NULL,
               array_agg(a.attname::text ORDER BY k.ord), c.contype
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace s ON s.oid = t.relnamespace AND s.nspname = 'public'
        CROSS JOIN unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid
        WHERE t.relname <> 'schema_version'
        GROUP BY 1, 2, 3, 4, 5, 7
        """
    )
    for table, name, is_unique, is_primary, partial, cols, constraint in rows:
        primary, unique = keys.setdefault(table, ([], []))
        if is_primary:
            primary.extend(cols)
        elif constraint == "u":
            unique.append(cols)
        else:
            indexes[name] = (table, is_unique, cols, partial)
    for table in tables:
        primary, unique = keys.setdefault(table, ([], []))
        keys[table] = (primary, sorted(unique))
    return {"tables": tables, "keys": keys, "indexes": indexes}

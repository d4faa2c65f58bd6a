"""The ticket list's text filter through its trigram index (FTS5 kept by triggers on
SQLite, pg_trgm on PostgreSQL) finds exactly the tickets that reading every ticket finds:
case, NUL characters, LIKE's wildcards, quotes, text shorter than a trigram, and a
ticket rewritten by the writer's own upsert (its old words no longer find it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from service.storage import activity as sqlite_activity
from service.storage import appends as sqlite_appends
from service.storage import schema
from service.storage.backend import backend_for
from service.storage.dialects import is_postgres
from service.storage.postgres import activity as postgres_activity
from service.storage.postgres import appends as postgres_appends
from service.storage.sqlite import connect_sync

TICKETS = {
    "1": ("Disk FULL on host-12", "C: at 99%"),
    "2": ("ÉCRAN noir", "l'écran reste noir"),
    "3": ("before\x00host-12 after a NUL", "nothing"),
    "4": ("100% used_up", 'a "quoted" word and a back\\slash'),
    "5": ("Backup failed", "job host-120 at 02:00\x00then host-99"),
    "6": ("disk full on HOST-7", "écran"),
}

NEEDLES = [
    "host-12",
    "HOST-1",
    "full on",
    "écran",
    "ÉCRAN",
    "after a nul",
    "then host",
    "% us",
    "_up",
    "0% u",
    "k\\sl",
    '"quoted"',
    'a "',
    "ho",
    "x",
    "\x00host",
    "nothing there",
]

EXPECTED = {
    "host-12": {"1", "3", "5"},
    "after a nul": {"3"},
    "then host": {"5"},
    "écran": {"2", "6"},
    "_up": {"4"},
    '"quoted"': {"4"},
    "nothing there": set(),
}


@pytest.fixture
def db(log_db: Path | str) -> Iterator[Any]:
    """A log holding TICKETS, each written by the writer's own upsert statement."""
    conn = backend_for(str(log_db)).connect_sync(readonly=False)
    for ticket_id, (title, details) in TICKETS.items():
        upsert(conn, ticket_id, title, details, position=int(ticket_id))
    yield conn
    conn.close()


@pytest.mark.parametrize("needle", NEEDLES, ids=repr)
def test_the_index_finds_what_reading_every_ticket_finds(
    db: Any, needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexed = found(db, needle)
    if needle in EXPECTED:
        assert indexed == EXPECTED[needle]
    monkeypatch.setattr(module(db), "_TRIGRAM", 10**6)
    assert indexed == found(db, needle)


def test_a_rewritten_ticket_is_found_by_its_new_text_only(db: Any) -> None:
    upsert(db, "1", "Printer jammed", "tray 2", position=7)
    upsert(db, "3", "Fan noise", "loud", position=8)
    upsert(db, "5", *TICKETS["5"], position=9)
    assert found(db, "host-12") == {"5"}
    assert found(db, "then host") == {"5"}
    assert found(db, "printer jam") == {"1"}
    assert found(db, "fan noi") == {"3"}


def test_sqlite_starts_from_the_index_for_rare_text_and_walks_for_common(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if is_postgres(db):
        pytest.skip("PostgreSQL's planner chooses between the trigram indexes and a walk")
    assert "tickets_text" in " ".join(sqlite_activity.explain_recent(db, text="host-12"))
    monkeypatch.setattr(sqlite_activity, "_FEW_TEXTS", 2)
    assert "tickets_text" not in " ".join(sqlite_activity.explain_recent(db, text="host-12"))
    assert found(db, "host-12") == EXPECTED["host-12"]


def test_postgresql_can_answer_from_the_trigram_indexes(db: Any) -> None:
    """The filter's expressions are the indexed ones (whether to use them is the planner's
    call, by the table's size: here it is made to prefer them)."""
    if not is_postgres(db):
        pytest.skip("SQLite's plan is tested above")
    sql, params = postgres_activity._recent(51, None, text="zzzq")
    with db.transaction():
        db.execute("SET LOCAL enable_seqscan = off")
        db.execute("SET LOCAL enable_indexscan = off")
        plan = " ".join(next(iter(row.values())) for row in db.execute("EXPLAIN " + sql, params))
    assert "tickets_title_trigrams" in plan and "tickets_details_trigrams" in plan, plan


def test_a_file_from_before_the_index_has_it_built_on_opening(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as old:
        old.executescript("".join(schema.MIGRATIONS[:7]) + "PRAGMA user_version = 7;")
        for ticket_id, (title, details) in TICKETS.items():
            upsert(old, ticket_id, title, details, position=int(ticket_id))
    with closing(connect_sync(path, readonly=False)) as db:
        db.row_factory = sqlite3.Row
        assert found(db, "host-12") == EXPECTED["host-12"]
        assert found(db, "after a nul") == EXPECTED["after a nul"]


def found(db: Any, needle: str) -> set[str]:
    rows = module(db).recent(db, limit=100, text=needle)
    return {row.ticket.ncentral_ticket_id for row in rows}


def module(db: Any) -> Any:
    return postgres_activity if is_postgres(db) else sqlite_activity


def upsert(db: Any, ticket_id: str, title: str, details: str, *, position: int) -> None:
    row = (ticket_id, f"ext-{ticket_id}", "open", title, details, b"{}", "t0", f"t{position}")
    row += (1, position, None)
    if is_postgres(db):
        db.execute(postgres_appends.UPSERT_TICKET, postgres_appends.ticket_params(row))
    else:
        db.execute(sqlite_appends.UPSERT_TICKET, row)
        db.commit()

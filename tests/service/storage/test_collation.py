"""Text sorts the same on every backend, whatever collation the PostgreSQL database has.

SQLite compares text byte for byte; PostgreSQL by the database's collation, which an
administrator often sets to a language's (`en-US`: "a" before "B", "_x" before digits).
Ticket pages go by ncentralTicketId and a cursor means "the ids after this one", so
before migration 6 made every text column `COLLATE "C"`, a database created en-US listed
tickets in another order than SQLite did. Today's N-central IDs are ASCII digits, which
sort alike everywhere, but a log written before that check (issue 7) holds any text as
an ID, `migrate` carries it across, and every such ID must page the same on both.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from service.audit.tickets import TicketFilter, list_tickets
from service.storage import tickets
from service.storage.backend import backend_for, is_url
from service.storage.events import ranges_between
from service.storage.rows import TICKET_COLUMNS
from tests.support.postgres import Postgres

#: Ids whose byte order differs from en-US's at every turn: case, punctuation, accents.
TICKET_IDS = ["b", "B", "a", "A", "_x", "Z-1", "z1", "10", "9", "é", "e", "F"]


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-en-US"])
def tickets_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A `tickets` table with one row per id in `TICKET_IDS`: SQLite, PostgreSQL C, en-US."""
    db: Path | str = tmp_path / "ledger.db"
    if request.param != "sqlite":
        postgres: Postgres = request.getfixturevalue("postgres")
        db = postgres.create_database(icu_locale="en-US" if "en-US" in request.param else None)
    marks = ", ".join("%s" if is_url(db) else "?" for _ in TICKET_COLUMNS)
    insert = f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)}) VALUES ({marks})"
    with closing(backend_for(db).connect_sync(readonly=False)) as writable:
        for n, ticket_id in enumerate(TICKET_IDS):
            when = f"2024-01-01T00:00:{n:02}.000000Z"
            writable.execute(
                insert,
                (ticket_id, f"PSA-{n}", "open", "t", "d", "{}", when, when, 1, n + 1, None),
            )
    return db


def test_ticket_pages_follow_byte_order_through_every_cursor(tickets_db: Path | str) -> None:
    backend = backend_for(tickets_db)
    seen: list[str] = []
    cursor: str | None = None
    with closing(backend.connect_sync()) as db, backend.snapshot(db):
        while True:
            page = list_tickets(db, TicketFilter(), limit=2, cursor=cursor)
            seen += [t.ncentral_ticket_id for t in page.tickets]
            if page.next is None:
                break
            cursor = page.next
    assert seen == sorted(TICKET_IDS, key=lambda text: text.encode())


def test_a_range_after_a_cursor_holds_the_same_ids_as_on_sqlite(tickets_db: Path | str) -> None:
    backend = backend_for(tickets_db)
    with closing(backend.connect_sync()) as db, backend.snapshot(db):
        first = list_tickets(db, TicketFilter(), limit=5)
        rest = list_tickets(db, TicketFilter(), limit=100, cursor=first.next)
    assert [t.ncentral_ticket_id for t in rest.tickets] == ["Z-1", "_x", "a", "b", "e", "z1", "é"]


def test_verify_parts_of_the_tickets_table_hold_the_ids_python_puts_in_them(
    tickets_db: Path | str,
) -> None:
    """Each of `verify`'s workers compares its own range of the `tickets` table, cut on the
    server: a range that held other ids than Python's would report rows as missing or
    as having no CREATE."""
    backend = backend_for(tickets_db)
    parts = ranges_between(["B", "_x", "e"])
    with closing(backend.connect_sync()) as db, backend.snapshot(db):
        held = [sorted(tickets.rows_by_ticket(db, part)) for part in parts]
        every = tickets.rows_by_ticket(db)
        asked = tickets.rows_of(db, ["é", "_x", "no-such-id", "10"])
    assert held == [sorted(filter(part.holds, TICKET_IDS)) for part in parts]
    assert held == [sorted(part.kept(dict.fromkeys(TICKET_IDS))) for part in parts]
    assert held == [["10", "9", "A"], ["B", "F", "Z-1"], ["_x", "a", "b"], ["e", "z1", "é"]]
    assert asked == {ticket_id: every[ticket_id] for ticket_id in ("é", "_x", "10")}

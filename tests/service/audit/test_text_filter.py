"""The ticket list's text filter through the server's trigram index (`storage.textindex`):
the same pages as walking every ticket, on SQLite and on PostgreSQL, however the index
stands (built, behind, ahead of a snapshot, broken, missing), and index reads only.
"""

from __future__ import annotations

import html
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.biglog import build_log
from service.audit.activity import ActivityFilter, ActivityPage, ActivityRow, recent_activity
from service.storage import activity as stored_activity
from service.storage import sqlite
from service.storage import texts as stored_texts
from service.storage.backend import backend_for
from service.storage.dialects import is_postgres
from service.storage.textindex import TextIndex
from tests.conftest import BACKENDS
from tests.support.backends import read_on
from tests.support.fuzzing import examples
from tests.support.harness import Server
from tests.support.live import wait_for

Connection = Any

#: Texts on the generated log: titles "Disk almost full on host-N", details "C: 9x% used".
TEXTS = ["host-1", "HOST-12", "host-12", "Host-599", "almost", "98% used", "ho", "nowhere"]


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("texts") / "log.db"
    build_log(path, 8_000, wave=300)
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def db(request: pytest.FixtureRequest, log_file: Path) -> Iterator[Connection]:
    """The log read on SQLite, then the same log copied into a PostgreSQL database."""
    yield from read_on(request, log_file)


def every_page(
    db: Connection, where: ActivityFilter, texts: TextIndex | None
) -> list[ActivityPage]:
    pages = [recent_activity(db, where, limit=7, texts=texts)]
    while pages[-1].next is not None:
        pages.append(recent_activity(db, where, limit=7, cursor=pages[-1].next, texts=texts))
    return pages


@pytest.mark.parametrize(("most_candidates", "longest"), [(2000, 65_536), (20, 65_536), (2000, 36)])
@pytest.mark.parametrize("text", TEXTS)
def test_the_index_lists_the_pages_the_walk_lists(
    db: Connection, text: str, most_candidates: int, longest: int
) -> None:
    """Few matches (from the candidates) or many (the walk), tickets held with or without
    their texts (the generated ones are 35-38 characters long): every page the same."""
    index = TextIndex(most_candidates=most_candidates, longest=longest)
    index.refresh(db)
    where = ActivityFilter(text=text)
    walked = every_page(db, where, None)
    assert every_page(db, where, index) == walked
    assert sum(len(page.rows) for page in walked) > 0 or text == "nowhere"


def test_the_index_answers_from_candidates_when_they_are_few(db: Connection) -> None:
    index = TextIndex()
    index.refresh(db)
    chosen = index.candidates(db, "HOST-12", before=None, wanted=5)
    assert chosen is not None and not chosen.complete
    assert index.candidates(db, "ho", before=None, wanted=5) is None, "two letters: the walk"
    assert TextIndex(most_candidates=3).candidates(db, "host-1", before=None, wanted=5) is None


def test_a_missing_or_broken_index_only_walks(db: Connection) -> None:
    where = ActivityFilter(text="host-12")
    walked = every_page(db, where, None)
    unbuilt = TextIndex()
    assert unbuilt.candidates(db, "host-12", before=None, wanted=5) is None
    assert every_page(db, where, unbuilt) == walked
    broken = TextIndex()
    broken.refresh(db)
    assert broken._kept is not None
    broken._kept.db.execute("DROP TABLE texts")
    assert every_page(db, where, broken) == walked
    assert broken.bookmark is None, "a broken index is dropped"
    broken.refresh(db)
    assert broken.candidates(db, "host-12", before=None, wanted=5) is not None, "built again"


def test_the_index_reads_of_the_log_walk_indexes(db: Connection) -> None:
    explains = (
        stored_texts.explain_texts_after,
        stored_texts.explain_texts_of,
        stored_texts.explain_touched,
    )
    for explain in explains:
        plan = explain(db)
        if is_postgres(db):
            assert not any(node.startswith("Seq Scan") for node in plan), (explain, plan)
            assert any(node.startswith(("Index", "Bitmap")) for node in plan), (explain, plan)
        else:
            assert all(
                step.startswith(("SEARCH", "LIST SUBQUERY")) or "json_each" in step for step in plan
            ), plan
    listed = stored_activity.explain_recent(db, text="host-12", among=["100001", "100002"])
    if is_postgres(db):
        assert not any("Seq Scan on tickets" in node for node in listed), listed
    else:
        # Candidates by key, the page's keys sorted, then each row and its joins by key.
        searches = [step for step in listed if step.startswith("SEARCH")]
        assert "SEARCH t USING INTEGER PRIMARY KEY (rowid=?)" in searches, listed
        assert "SEARCH t USING INDEX sqlite_autoindex_tickets_1 (ncentral_ticket_id=?)" in searches
        assert not any(step.startswith("SCAN t") for step in listed), listed


# --- the index kept along a log that a real server writes -------------------------------


def create(server: Server, ticket: str, title: str, details: str = "-") -> None:
    body = {"action": "CREATE", "ncentralTicketId": ticket, "title": title, "details": details}
    assert server.send(**body).status_code == 200


def listed(server: Server, text: str) -> list[str]:
    """The external ids the console's list shows for `text`, every page, in order."""
    found: list[str] = []
    page = server.operator.get("/", params={"text": text})
    while True:
        assert page.status_code == 200, page.text
        found += [unquote(href) for href in _ROW.findall(page.text)]
        more = _NEXT.search(page.text)
        if more is None:
            return found
        page = server.operator.get(html.unescape(more[1]))


def walked(db: Path | str, text: str) -> list[str]:
    """The external ids of the tickets the walk lists for `text`, read from the log."""
    return [row.external_ticket_id for row in walked_rows(db, text)]


def walked_rows(db: Path | str, text: str) -> list[ActivityRow]:
    backend = backend_for(db)
    with closing(backend.connect_sync()) as conn, backend.snapshot(conn):
        pages = every_page(conn, ActivityFilter(text=text), None)
    return [row for page in pages for row in page.rows]


def test_the_index_says_how_far_it_is_in_the_metrics(server: Server) -> None:
    create(server, "6001", "Index me")
    head = stored_activity.head_position  # the gauge reaches the log's head within seconds
    backend = backend_for(server.db)
    with closing(backend.connect_sync()) as conn, backend.snapshot(conn):
        at = head(conn)
    wait_for(lambda: _gauge(server) >= at, what="the text index at the head")


def _gauge(server: Server) -> float:
    found = re.search(
        r"^psa_ledger_text_index_position (\S+)$", server.ncentral.get("/metrics").text, re.M
    )
    assert found is not None
    return float(found[1])


def test_the_list_follows_edits_through_the_index(server: Server, module_db: Path | str) -> None:
    for n in range(60):
        create(server, f"{7000 + n}", f"Printer {n} jammed" if n % 2 else f"Scanner {n}", "tray 2")
    assert listed(server, "PRINTER") == walked(module_db, "PRINTER")
    assert len(listed(server, "PRINTER")) == 30, "two pages of fifty-odd"
    server.send(action="UPDATE", ncentralTicketId="7003", title="Toner low")
    server.send(action="UPDATE", ncentralTicketId="7004", details="printer offline")
    rows = walked_rows(module_db, "printer")
    assert listed(server, "printer") == [row.external_ticket_id for row in rows]
    ids = [row.ncentral_ticket_id for row in rows]
    assert "7003" not in ids and ids[0] == "7004" and len(ids) == 30, ids
    assert listed(server, "pr") == walked(module_db, "pr"), "two letters: the walk"
    assert listed(server, "TRAY 2") == walked(module_db, "tray 2")


def test_a_snapshot_behind_the_index_lists_what_it_holds(
    server: Server, module_db: Path | str
) -> None:
    create(server, "8001", "Fan failure on rack 7")
    backend = backend_for(module_db)
    index = TextIndex()
    with closing(backend.connect_sync()) as old, closing(backend.connect_sync()) as new:
        with backend.snapshot(old):
            before = stored_activity.head_position(old)
            server.send(action="UPDATE", ncentralTicketId="8001", title="Fan replaced")
            create(server, "8002", "Fan failure on rack 8")
            with backend.snapshot(new):
                index.refresh(new)
            assert index.bookmark is not None and index.bookmark > before
            where = ActivityFilter(text="fan failure")
            pages = every_page(old, where, index)
            assert [r.ncentral_ticket_id for p in pages for r in p.rows] == ["8001"]
            assert pages == every_page(old, where, None)
        with backend.snapshot(new):
            found = every_page(new, ActivityFilter(text="fan failure"), index)
        assert [r.ncentral_ticket_id for p in found for r in p.rows] == ["8002"]


# --- the index's candidates against SQLite's own filter, on any text ---------------------

#: Letters whose case SQLite's `lower` does not fold and trigrams do (É, İ, ẞ, the Kelvin
#: sign), what Python's `lower` makes longer (İ), what FTS5 quotes or stops at ('"', NUL).
_ALPHABET = st.sampled_from(
    ["a", "A", "b", "B", "-", "1", " ", '"', "%", "_", "É", "é", "İ", "i", "\u0307",
     "ß", "ẞ", "\u212a", "k", "K", "\x00", "\ue000"]
)  # fmt: skip


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = tmp_path_factory.mktemp("scratch") / "texts.db"
    with closing(sqlite.connect_sync(path, readonly=False)) as db:
        yield db


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(st.tuples(st.text(_ALPHABET, max_size=10), st.text(_ALPHABET, max_size=10)),
                  min_size=1, max_size=8),
    data=st.data(),
)  # fmt: skip
def test_the_index_misses_no_ticket_sqlite_finds(
    scratch: sqlite3.Connection, rows: list[tuple[str, str]], data: Any
) -> None:
    texts = [title for title, _ in rows] + [details for _, details in rows]
    text = data.draw(st.one_of(st.text(_ALPHABET, min_size=1, max_size=5), _pieces(texts)))
    index_finds_what_sqlite_finds(scratch, rows, text)


@pytest.mark.parametrize(
    ("rows", "text"),
    [
        ([("a\x00bcd", "-"), ("x", "bc\x00d")], "BCD"),
        ([("XİK", "-")], "xİk"),
        ([("xi\u0307k", "-")], "XİK"),
        ([('say "hi" now', "-")], '"HI"'),
        ([("100% _done_", "-")], "% _D"),
        ([("\u212aelvin", "kel")], "KEL"),
    ],
    ids=["nul", "dotted-i", "dotted-i-lowered", "quotes", "like-marks", "kelvin"],
)
def test_the_index_misses_no_ticket_sqlite_finds_in_these(
    scratch: sqlite3.Connection, rows: list[tuple[str, str]], text: str
) -> None:
    index_finds_what_sqlite_finds(scratch, rows, text)


def test_a_clock_set_back_still_lists_the_walks_pages(scratch: sqlite3.Connection) -> None:
    """A ticket whose activity moves back in time: the numbers leave the list's order,
    and the index sorts its matches instead."""
    scratch.execute("DELETE FROM tickets")
    for n in range(9):
        _insert(scratch, f"k{n}", f"pump {n} failed", "-", f"2026-01-01T00:00:0{n}Z")
    scratch.commit()
    index = TextIndex()
    index.refresh(scratch)
    scratch.execute(
        "UPDATE tickets SET updated_at = '2025-12-31T00:00:00Z' WHERE title = ?", ("pump 8 failed",)
    )
    _append(scratch, "k8")
    where = ActivityFilter(text="PUMP")
    assert every_page(scratch, where, index) == every_page(scratch, where, None)
    assert every_page(scratch, where, index)[0].rows[0].ncentral_ticket_id == "k7"


def test_a_ticket_too_long_to_hold_is_a_candidate_for_every_text(
    scratch: sqlite3.Connection,
) -> None:
    """Held without its text, a long ticket is checked by the log for any needle: found
    where it matches, however far into its details, and left out where it does not."""
    scratch.execute("DELETE FROM tickets")
    _insert(scratch, "k0", "pump failed", "-", "2026-01-01T00:00:00Z")
    _insert(scratch, "k1", "fan", "x" * 40 + " pump room flooded", "2026-01-01T00:00:01Z")
    _insert(scratch, "k2", "fan", "y" * 40, "2026-01-01T00:00:02Z")
    scratch.commit()
    index = TextIndex(longest=30)
    index.refresh(scratch)
    chosen = index.candidates(scratch, "PUMP", before=None, wanted=5)
    assert chosen is not None and {"k1", "k2"} <= set(chosen.keys)
    where = ActivityFilter(text="pump")
    pages = every_page(scratch, where, index)
    assert [r.ncentral_ticket_id for p in pages for r in p.rows] == ["k1", "k0"]
    assert pages == every_page(scratch, where, None)
    _insert(scratch, "k3", "pump", "short again", "2026-01-01T00:00:03Z")
    scratch.execute("UPDATE tickets SET details = 'pump ok' WHERE ncentral_ticket_id = 'k1'")
    _append(scratch, "k1")
    _append(scratch, "k3")
    assert every_page(scratch, where, index) == every_page(scratch, where, None)
    index.close()


def test_catching_up_many_tickets_finds_each_by_its_text_now(scratch: sqlite3.Connection) -> None:
    """More tickets than the index puts at once: new ones, ones whose text and activity
    moved, ones whose text changed in the same instant as their last activity, and ones an
    event named without changing them. Each is found by its text as it is now, a snapshot
    from before by its text as it was then, and the index holds one text a ticket."""
    scratch.execute("DELETE FROM tickets")
    for n in range(300):
        _insert(scratch, f"k{n:03d}", f"pump {n}", "-", _at(n))
    scratch.commit()
    index = TextIndex()
    index.refresh(scratch)
    with closing(sqlite.connect_sync(_path_of(scratch))) as then:
        then.execute("BEGIN")
        before = every_page(then, ActivityFilter(text="pump"), None)
        for n in range(100):  # moved, with a new text
            _retitle(scratch, f"k{n:03d}", f"valve {n}", _at(1000 + n))
        for n in range(100, 110):  # a new text, the same instant
            _retitle(scratch, f"k{n:03d}", f"valve {n}", _at(n))
        for n in range(110, 120):  # named by an event that changed nothing
            _append(scratch, f"k{n:03d}")
        for n in range(300, 500):  # new: with those above, more than a batch (256)
            _insert(scratch, f"k{n:03d}", f"valve {n}", "-", _at(1000 + n))
            _append(scratch, f"k{n:03d}")
        for text in ("valve", "pump", "pump 10", "valve 10"):
            where = ActivityFilter(text=text)
            assert every_page(scratch, where, index) == every_page(scratch, where, None), text
        assert every_page(then, ActivityFilter(text="pump"), index) == before
        then.rollback()
    assert index._kept is not None, "caught up, not dropped"
    counts = index._kept.db.execute("SELECT (SELECT COUNT(*) FROM texts), COUNT(*) FROM docs")
    assert counts.fetchone() == (500, 500)
    index.close()


def _path_of(db: sqlite3.Connection) -> Path:
    return Path(db.execute("PRAGMA database_list").fetchone()[2])


def _at(second: int) -> str:
    return f"2026-01-01T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"


def _retitle(db: sqlite3.Connection, key: str, title: str, updated: str) -> None:
    """A new title and activity for ticket `key`, by an event at the log's next position."""
    _append(db, key)
    db.execute(
        "UPDATE tickets SET title = ?, updated_at = ?,"
        " last_position = (SELECT MAX(position) FROM events) WHERE ncentral_ticket_id = ?",
        (title, updated, key),
    )
    db.commit()


def index_finds_what_sqlite_finds(
    scratch: sqlite3.Connection, rows: list[tuple[str, str]], text: str
) -> None:
    """The candidates hold every ticket SQLite's filter finds; the pages are the walk's."""
    scratch.execute("DELETE FROM tickets")
    for n, (title, details) in enumerate(rows):
        _insert(scratch, f"k{n}", title, details, f"2026-01-01T00:00:0{n}Z")
    scratch.commit()
    index = TextIndex()
    index.refresh(scratch)
    chosen = index.candidates(scratch, text, before=None, wanted=100)
    found = {key for (key,) in scratch.execute(_FILTER, (text.lower(), text.lower()))}
    if chosen is None:
        assert len(text.lower()) < 3 or "\x00" in text
    else:
        assert found <= set(chosen.keys), (text, rows)
    where = ActivityFilter(text=text)
    assert every_page(scratch, where, index) == every_page(scratch, where, None)
    index.close()


def _pieces(texts: list[str]) -> st.SearchStrategy[str]:
    """A piece of one of `texts`, its case changed: what someone looking for it may type."""
    return (
        st.sampled_from(texts)
        .flatmap(
            lambda text: st.tuples(st.integers(0, len(text)), st.integers(0, len(text))).map(
                lambda ends: text[min(ends) : max(ends)]
            )
        )
        .flatmap(lambda piece: st.sampled_from([piece, piece.upper(), piece.swapcase()]))
    )


def _insert(db: sqlite3.Connection, key: str, title: str, details: str, updated: str) -> None:
    db.execute(
        "INSERT INTO tickets VALUES (?, ?, 'open', ?, ?, ?, ?, ?, 1, 1, NULL)",
        (key, f"PSA-{key}", title, details, msgspec.json.encode({}).decode(), updated, updated),
    )


def _append(db: sqlite3.Connection, ticket: str) -> None:
    """An event naming `ticket` at the log's next position (hash and payload not checked)."""
    db.execute(
        "INSERT INTO events (position, ticket_id, stream_version, action, outcome,"
        " recorded_at, actor, payload, schema_version, prev_hash, hash)"
        " SELECT COALESCE(MAX(position), 0) + 1, ?, COALESCE(MAX(position), 0) + 2, 'UPDATE',"
        " 'accepted', 'T', 'test', '{}', 1, '-', '-' FROM events",
        (ticket,),
    )
    db.commit()


_FILTER = (
    "SELECT ncentral_ticket_id FROM tickets"
    " WHERE instr(lower(title), ?) > 0 OR instr(lower(details), ?) > 0"
)
_ROW = re.compile(r'<tr><td><a href="/tickets/([^"]+)"')
_NEXT = re.compile(r'<a href="([^"]+)" rel="next">')

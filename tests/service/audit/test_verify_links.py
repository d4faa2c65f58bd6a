"""`verify` finds a broken link in the chain though every row hashes to its recorded hash,
in one process and in workers: two parts prove the links between them by pairing what each
expects with what the other provides (`service.audit.links`), three leave them to the
database."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench.biglog import build_log
from service.audit.verify import Finding, verify
from service.storage import events
from service.storage.backend import backend_for
from service.storage.sqlite import connect_sync
from statemachine.events import GENESIS_HASH, HASHED_COLUMNS, chain_hash_values
from tests.support.backends import copy_to_damage, edit
from tests.support.fuzzing import examples

BROKEN = "prev_hash is not the hash of the row before (the chain is broken)"
MISSING = ": rows are missing or moved"
#: The events of the small log the property test damages.
SMALL = 400


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("verify-links") / "log.db"
    build_log(path, 3_000, check=True, checkpoint_every=1_000)
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def copied(request: pytest.FixtureRequest, generated: Path, tmp_path: Path) -> str:
    """A copy of the generated log on each backend, open to edits."""
    return copy_to_damage(request, generated, tmp_path)


@pytest.mark.parametrize("crossing", [True, False], ids=["between-parts", "within-a-part"])
def test_a_link_broken_under_a_chain_hashed_again_is_found(copied: str, crossing: bool) -> None:
    """Someone puts another `prev_hash` in one row and hashes it and every row after it
    again, each linked to the one before: only that link is wrong."""
    position = _link(copied, crossing)
    _hash_again_from(copied, position, prev_hash="f" * 64)
    backend = backend_for(copied)
    with closing(backend.connect_sync()) as db, backend.snapshot(db):
        reports = [verify(db)] + [verify(db, workers=n, parallel_from=0) for n in (2, 3)]
    for report in reports:
        assert report.findings == [Finding(position, BROKEN)]


def test_the_database_walks_the_links_only_when_the_parts_cannot_prove_them(
    copied: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    walks = _counted(monkeypatch)
    backend = backend_for(copied)
    with closing(backend.connect_sync()) as db, backend.snapshot(db):
        for workers in (1, 2):
            assert verify(db, workers=workers, parallel_from=0).ok
        assert walks == []
        assert verify(db, workers=3, parallel_from=0).ok
        assert walks == [1]
    _hash_again_from(copied, _link(copied, crossing=True), prev_hash="f" * 64)
    with closing(backend.connect_sync()) as db, backend.snapshot(db):
        assert not verify(db, workers=2, parallel_from=0).ok
    assert walks == [1, 1]


#: What the property test does to a row: (what, its position, another position).
damages = st.lists(
    st.tuples(
        st.sampled_from(["delete", "move", "relink", "relink and hash the rest again"]),
        st.integers(1, SMALL),
        st.integers(1, 2 * SMALL),
    ),
    min_size=1,
    max_size=3,
)


@pytest.mark.hypothesis
def test_verify_finds_exactly_the_broken_links_whatever_was_done(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Rows deleted, moved, and linked to another row, with or without the chain after them
    hashed again: in one part and in two, `verify` names every row whose link to the row
    before it is broken, and no other, as a walk of the rows in position order finds."""
    folder = tmp_path_factory.mktemp("verify-links-damaged")
    build_log(folder / "log.db", SMALL, check=True, checkpoint_every=100)

    @settings(max_examples=examples(25), deadline=None)
    @example([("relink", 1, 5)])
    @example([("delete", 1, 1)])
    @example([("relink and hash the rest again", 2, 1)])
    @example([("move", 3, 2 * SMALL)])
    @given(damages)
    def check(done: list[tuple[str, int, int]]) -> None:
        copy = folder / "copy.db"
        with sqlite3.connect(folder / "log.db") as src, closing(sqlite3.connect(copy)) as dst:
            src.backup(dst)
        edit(str(copy), "DROP TRIGGER events_refuse_update", "DROP TRIGGER events_refuse_delete")
        for what, position, other in done:
            _damage(str(copy), what, position, other)
        with closing(connect_sync(copy)) as db:
            expected = _broken_links(db)
            for workers in (1, 2):
                report = verify(db, workers=workers, parallel_from=0, keep=10_000)
                found = [f for f in report.findings if f.problem == BROKEN or MISSING in f.problem]
                assert found == expected, (done, workers)

    check()


def _damage(db: str, what: str, position: int, other: int) -> None:
    if what == "delete":
        edit(db, f"DELETE FROM events WHERE position = {position}")
    elif what == "move":
        edit(db, f"UPDATE OR IGNORE events SET position = {other} WHERE position = {position}")
    else:
        with closing(connect_sync(Path(db))) as conn:
            row = conn.execute("SELECT hash FROM events WHERE position = ?", (other,)).fetchone()
        if row is not None:
            _hash_again_from(db, position, prev_hash=row[0], rest="rest" in what)


def _broken_links(db: sqlite3.Connection) -> list[Finding]:
    """Each row against the row before it in position order, in Python."""
    found = []
    previous, previous_hash = 0, GENESIS_HASH
    for position, prev_hash, hash in db.execute(
        "SELECT position, prev_hash, hash FROM events WHERE position > 0 ORDER BY position"
    ):
        if position != previous + 1:
            found.append(Finding(position, f"position {position} follows {previous}{MISSING}"))
        if prev_hash != previous_hash:
            found.append(Finding(position, BROKEN))
        previous, previous_hash = position, hash
    return sorted(found, key=lambda f: (f.position, f.problem))


def _link(db: str, crossing: bool) -> int:
    """A position past the first checkpoint whose row before is in the other one of two
    parts (`crossing`), or in the same one."""
    with closing(backend_for(db).connect_sync()) as conn:
        first, _ = events.ticket_ranges(conn, 2)
        rows = events.rows_for_rules(conn, events.last_position(conn))
        parts = [(row[0], first.holds(row[1])) for row in rows]
    return next(
        position
        for (_, before), (position, part) in pairwise(parts)
        if position > 1_000 and (before != part) == crossing
    )


def _hash_again_from(db: str, position: int, *, prev_hash: str, rest: bool = True) -> None:
    """The row at `position` given `prev_hash` and hashed again; with `rest`, each row after
    it too, linked to the one before."""
    with closing(backend_for(db).connect_sync()) as conn:
        rows = list(events.rows_for_rules(conn, events.last_position(conn)))
    statements = []
    for row in [row for row in rows if row[0] >= position][: None if rest else 1]:
        hashed = chain_hash_values(row[:HASHED_COLUMNS], prev_hash)
        statements.append(
            f"UPDATE events SET prev_hash = '{prev_hash}', hash = '{hashed}'"
            f" WHERE position = {row[0]}"
        )
        prev_hash = hashed
    edit(db, *statements)


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The calls to `events.links_to_check`, each still made."""
    walks: list[int] = []
    walk = events.links_to_check

    def counted(*args: Any) -> Any:
        walks.append(1)
        return walk(*args)

    monkeypatch.setattr(events, "links_to_check", counted)
    return walks

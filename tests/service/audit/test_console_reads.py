"""The console's reads on a generated 20k-event log: index walks only, and the answers
of a full replay (`state_at`, `changes_between`) from one pass over the window.

Timings belong to `make bench` (`python -m bench console`); here only the plans and
the numbers.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.biglog import build_log
from service.audit.activity import (
    ActivityFilter,
    StateCounts,
    carry_counts,
    explain_activity,
    recent_activity,
    state_counts,
)
from service.audit.replay import changes_between, state_at
from service.audit.window import OPEN_STATES, open_at, review
from service.storage import window as stored
from service.storage.events import at
from service.storage.sqlite import connect_sync


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path: Path = tmp_path_factory.mktemp("console") / "log.db"
    build_log(path, 20_000, wave=700)
    conn = connect_sync(path)
    yield conn
    conn.close()


def index_walk(plan: list[str]) -> bool:
    return all(
        step.startswith(("SEARCH", "LIST SUBQUERY", "CORRELATED")) for step in plan
    ) and not any("TEMP B-TREE" in step for step in plan)


@pytest.mark.parametrize(
    "where",
    [
        ActivityFilter(),
        ActivityFilter(state="closed"),
        ActivityFilter(tags=(("site", "York"),)),
        ActivityFilter(state="reopened", tags=(("site", "Leeds"),)),
        ActivityFilter(ncentral_ticket_id="100042"),
        ActivityFilter(text="host-12"),
    ],
    ids=repr,
)
def test_the_ticket_list_walks_an_index_in_activity_order(
    db: sqlite3.Connection, where: ActivityFilter
) -> None:
    assert index_walk(explain_activity(db, where)), explain_activity(db, where)


def test_the_review_window_walks_the_primary_key(db: sqlite3.Connection) -> None:
    for plan in (stored.explain_marks(db), stored.explain_net_entered(db)):
        assert index_walk(plan), plan
        assert "INTEGER PRIMARY KEY" in plan[0], plan
    counts = db.execute("EXPLAIN QUERY PLAN SELECT state, COUNT(*) FROM tickets GROUP BY state")
    assert "COVERING INDEX" in next(row["detail"] for row in counts)


def test_the_list_pages_newest_activity_first_without_repeats(db: sqlite3.Connection) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = recent_activity(db, ActivityFilter(state="reopened"), limit=300, cursor=cursor)
        seen += [row.ticket.updated_at for row in page.rows]
        ids = [row.ticket.ncentral_ticket_id for row in page.rows]
        assert len(set(ids)) == len(ids)
        if page.next is None:
            break
        cursor = page.next
    assert len(seen) == 2_000
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize("position", [0, 1, 2_500, 9_999, 10_001, 17_000, 20_000])
def test_open_tickets_at_a_moment_match_a_full_replay(
    db: sqlite3.Connection, position: int
) -> None:
    replayed = state_at(db, position)
    expected = sum(1 for t in replayed.values() if t.state.value in OPEN_STATES)
    assert open_at(db, position) == expected


@pytest.mark.parametrize(("first", "last"), [(1, 20_000), (3_000, 7_500), (14_001, 19_000)])
def test_one_pass_over_a_window_says_what_diff_says(
    db: sqlite3.Connection, first: int, last: int
) -> None:
    since, until = at(db, first).recorded_at, at(db, last).recorded_at  # type: ignore[union-attr]
    window = review(db, since, until)
    assert (window.first, window.last, window.events) == (first, last, last - first + 1)
    diff = {
        c.ticket_id: (c.before, c.after)
        for c in changes_between(db, first - 1, last)
        if c.field == "state"
    }
    assert {t.ticket_id: (t.before, t.after) for t in window.state_changes} == diff
    assert sum(b.total for b in window.buckets) == window.events
    end = state_at(db, last)
    assert window.buckets[-1].open_after == sum(
        1 for t in end.values() if t.state.value in OPEN_STATES
    )


@pytest.mark.parametrize(("start", "end"), [(0, 20_000), (12_345, 20_000), (20_000, 7_000), (5, 6)])
def test_counts_carried_along_the_log_are_counts(
    db: sqlite3.Connection, start: int, end: int
) -> None:
    def counted(position: int) -> dict[str, int]:
        return dict(Counter(t.state.value for t in state_at(db, position).values()))

    assert carry_counts(db, counted(start), start, end) == counted(end)


def test_a_count_is_carried_from_the_last_one(db: sqlite3.Connection) -> None:
    counts = StateCounts()
    fresh = counts(db)
    assert fresh == state_counts(db)
    # As if the last page had been rendered at position 15,000: the same answer, carried.
    past = dict(Counter(t.state.value for t in state_at(db, 15_000).values()))
    counts._known = (15_000, past)
    assert counts(db) == fresh

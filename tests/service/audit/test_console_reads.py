"""The console's reads on a generated 20k-event log, on SQLite and on PostgreSQL (the
same log copied by `psa-ledger migrate`'s `copy_log`): index walks only, and the answers
of a full replay (`state_at`, `changes_between`) from one pass over the window.

Timings belong to `make bench` (`python -m bench console`); here only the plans and
the numbers.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.biglog import build_log
from service.audit import window as audit_window
from service.audit.activity import (
    ActivityFilter,
    StateCounts,
    carry_counts,
    explain_activity,
    recent_activity,
    state_counts,
)
from service.audit.events import EventFilter, search, timeline
from service.audit.replay import changes_between, state_at
from service.audit.startpoints import Startpoints
from service.audit.window import (
    OPEN_STATES,
    OpenTally,
    Rollups,
    Touched,
    bucket_size,
    changes,
    review,
)
from service.storage import window as stored
from service.storage.dialects import is_postgres
from service.storage.events import Shown, at, iter_after
from service.storage.sqlite import connect_sync
from service.timestamps import format_utc
from tests.conftest import BACKENDS
from tests.support.backends import read_on

Connection = Any


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("console") / "log.db"
    build_log(path, 20_000, wave=700)
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def db(request: pytest.FixtureRequest, log_file: Path) -> Iterator[Connection]:
    """The log read on SQLite, then the same log copied into a PostgreSQL database."""
    yield from read_on(request, log_file)


def index_walk(plan: list[str], *, grouped: bool = False) -> bool:
    """SQLite: searches only, no sort (`grouped`: a GROUP BY may sort the rows it found;
    a query may scan its own list of asked values). PostgreSQL (EXPLAIN (FORMAT JSON)'s
    nodes): no sequential scan of the log or the tickets, and an index read somewhere."""
    if plan and not plan[0].startswith(_SQLITE_STEPS):
        no_scan = not any(node.startswith("Seq Scan") for node in plan)
        return no_scan and any(node.startswith(("Index", "Bitmap")) for node in plan)
    asked = [p.split()[1] for p in plan if p.startswith(("MATERIALIZE", "CO-ROUTINE"))]
    allowed = {f"SCAN {name}" for name in asked}
    return all(
        step.startswith(("SEARCH", "LIST SUBQUERY", "CORRELATED", "MATERIALIZE", "CO-ROUTINE"))
        or step in allowed
        or (step.startswith("SCAN ") and step.endswith(" CONSTANT ROWS"))
        or (grouped and step == "USE TEMP B-TREE FOR GROUP BY")
        for step in plan
    ) and (grouped or not any("TEMP B-TREE" in step for step in plan))


_SQLITE_STEPS = ("SEARCH", "SCAN", "LIST", "CORRELATED", "USE", "MATERIALIZE", "CO-ROUTINE")


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
    db: Connection, where: ActivityFilter
) -> None:
    if is_postgres(db):
        pytest.skip("the list's PostgreSQL plan is PostgreSQL's choice; its reads are below")
    plan = explain_activity(db, where)
    if plan[0].startswith("SEARCH g USING COVERING INDEX ticket_tags_by_tag"):
        # A tag on few tickets: those are sorted (at most _FEW_TAGGED of them).
        assert plan[-1] == "USE TEMP B-TREE FOR ORDER BY", plan
        plan = plan[:-1]
    assert index_walk(plan), plan


@pytest.mark.parametrize("tags", [(("site", "York"),), (("site", "Leeds"), ("site", "Leeds"))])
def test_both_plans_of_a_tag_filter_list_the_same_tickets(
    db: Connection, tags: tuple[tuple[str, str], ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few tagged tickets (start from the tag) or many (walk the activity order): one list."""
    from service.storage import activity as stored_activity

    def pages() -> list[str]:
        seen, cursor = [], None
        while True:
            page = recent_activity(db, ActivityFilter(tags=tags), limit=70, cursor=cursor)
            seen += [row.ncentral_ticket_id for row in page.rows]
            if page.next is None:
                return seen
            cursor = page.next

    few = pages()
    monkeypatch.setattr(stored_activity, "_FEW_TAGGED", 1)
    many = pages()
    assert few == many and len(few) == 500
    if not is_postgres(db):
        where = ActivityFilter(tags=tags)
        assert "tickets_by_update" in explain_activity(db, where)[0]


def test_the_review_window_walks_indexes_only(db: Connection) -> None:
    """Every query of the review page: the window by the primary key, each ticket's own
    events by `(ticket_id, position)`, bucket starts by the time index; on PostgreSQL no
    Seq Scan of events or tickets. The counts group the window's rows in memory, never
    the log's."""
    window = (stored.explain_marks, stored.explain_net_entered)
    counted = (
        stored.explain_tallies,
        stored.explain_ticket_ends,
        stored.explain_net_entered_by_block,
    )
    for explain in (*window, stored.explain_stream_rows, stored.explain_firsts_from):
        plan = explain(db)
        assert index_walk(plan), (explain.__name__, plan)
    for explain in counted:
        plan = explain(db)
        assert index_walk(plan, grouped=True), (explain.__name__, " | ".join(plan))
    for explain in (*window, *counted):
        plan = explain(db)
        key = "using events_pkey" if is_postgres(db) else "INTEGER PRIMARY KEY"
        assert key in " ".join(plan), plan
    assert "events_by_ticket_position" in " ".join(stored.explain_stream_rows(db))
    assert "events_by_time" in " ".join(stored.explain_firsts_from(db))
    if not is_postgres(db):
        counts = db.execute("EXPLAIN QUERY PLAN SELECT state, COUNT(*) FROM tickets GROUP BY state")
        assert "COVERING INDEX" in next(row["detail"] for row in counts)


def test_the_list_pages_newest_activity_first_without_repeats(db: Connection) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = recent_activity(db, ActivityFilter(state="reopened"), limit=300, cursor=cursor)
        seen += [row.updated_at for row in page.rows]
        ids = [row.ncentral_ticket_id for row in page.rows]
        assert len(set(ids)) == len(ids)
        if page.next is None:
            break
        cursor = page.next
    assert len(seen) == 2_000
    assert seen == sorted(seen, reverse=True)


def test_open_tickets_at_a_moment_match_a_full_replay(db: Connection) -> None:
    """Asked in any order, near and between the kept sums, and past the log's end."""
    tally = OpenTally(block=1_000)
    positions = [17_000, 0, 1, 2_500, 999, 1_000, 1_001, 9_999, 10_001, 20_000, 5]
    # Either side of a block's middle: counted on from one kept sum, or back from the next.
    for position in [*positions, 1_499, 1_501, 7_700, 19_999]:
        replayed = state_at(db, position)
        expected = sum(1 for t in replayed.values() if t.state.value in OPEN_STATES)
        assert tally(db, position) == expected, position
    assert tally(db, 25_000) == tally(db, 20_000)


def test_a_tally_never_keeps_a_block_the_log_had_not_finished(db: Connection) -> None:
    tally = OpenTally(block=1_500)
    assert tally(db, 30_000) == tally(db, 20_000)
    assert len(tally._kept) == 20_000 // 1_500 + 1


@pytest.mark.parametrize(
    "narrowed", [{}, {"action": "RESOLVE"}, {"outcome": "rejected"}, {"actor": "nobody"}]
)
def test_a_timeline_shows_what_search_finds_page_after_page(
    db: Connection, narrowed: dict[str, str]
) -> None:
    """The review page's timeline reads only the columns it shows, within the window's
    positions as `review` found them: the same events, and the same cursors, as `search`."""
    since, until = at(db, 3_000).recorded_at, at(db, 9_000).recorded_at  # type: ignore[union-attr]
    window = review(db, since, until, tally=OpenTally())
    where = EventFilter(since=since, until=until, **narrowed)
    cursor, shown_rows = None, 0
    while True:
        found = search(db, where, limit=700, cursor=cursor)
        shown = timeline(db, where, limit=700, cursor=cursor, within=(window.first, window.last))
        assert shown.events == [
            Shown(*(getattr(e, f) for f in Shown.__struct_fields__)) for e in found.events
        ]
        assert shown.next == found.next
        shown_rows += len(shown.events)
        if found.next is None:
            break
        cursor = found.next
    assert shown_rows == (window.events if not narrowed else shown_rows)
    assert shown_rows > 0 or narrowed == {"actor": "nobody"}


def test_a_timeline_past_the_logs_end_is_empty(db: Connection) -> None:
    since, until = "9999-01-01T00:00:00.000000Z", "9999-01-02T00:00:00.000000Z"
    window = review(db, since, until, tally=OpenTally())
    where = EventFilter(since=since, until=until)
    page = timeline(db, where, limit=50, cursor=None, within=(window.first, window.last))
    assert (page.events, page.next) == ([], None)


@pytest.mark.parametrize(("first", "last"), [(1, 20_000), (3_000, 7_500), (14_001, 19_000)])
def test_one_pass_over_a_window_says_what_diff_says(db: Connection, first: int, last: int) -> None:
    since, until = at(db, first).recorded_at, at(db, last).recorded_at  # type: ignore[union-attr]
    window = review(db, since, until, tally=OpenTally(block=700))
    assert (window.first, window.last, window.events) == (first, last, last - first + 1)
    diff = changes_between(db, first - 1, last)
    states = {c.ticket_id: (c.before, c.after) for c in diff if c.field == "state"}
    assert window.counts == _counted_from(states, db, first, last)
    assert window.counts.tickets == len(window.touched) >= len(states)
    assert sum(b.total for b in window.buckets) == window.events
    end = state_at(db, last)
    assert window.buckets[-1].open_after == sum(
        1 for t in end.values() if t.state.value in OPEN_STATES
    )
    # Every row of diff (titles, details and tags too), page after page, none twice.
    shown, after, pages = [], None, 0
    while True:
        page = changes(db, window, after=after, limit=300)
        shown += page.rows
        pages += 1
        if page.next is None:
            break
        after = page.next
    assert shown == diff
    assert {c.field for c in diff} >= {"state", "details"}
    assert pages == -(-len(window.touched) // 300)


def test_what_changed_folded_on_from_kept_starts_says_what_diff_says(
    db: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows one after another on one `Startpoints`: the same window again (its tickets
    kept as of its start), a later start (kept as of an earlier one), an earlier start
    (kept as of a later one: not usable), overlapping windows, from the log's first event.
    Each page says what diff says; asked again, no stream is read from its first event."""
    kept = Startpoints()
    read_after: list[int] = []
    reading = stored.stream_rows

    def noted(db: Connection, tickets: list[str], after: int, through: int) -> Any:
        read_after.extend([after] * len(tickets))
        return reading(db, tickets, after, through)

    monkeypatch.setattr(stored, "stream_rows", noted)
    tally = OpenTally(block=700)
    windows = [(3_000, 7_500), (3_000, 7_500), (5_000, 9_000), (2_000, 6_000), (1, 20_000)]
    for number, (first, last) in enumerate(windows):
        since, until = at(db, first).recorded_at, at(db, last).recorded_at  # type: ignore[union-attr]
        window = review(db, since, until, tally=tally)
        shown: list[Any] = []
        after = None
        read_after.clear()
        while True:
            page = changes(db, window, after=after, limit=97, kept=kept)
            shown += page.rows
            if page.next is None:
                break
            after = page.next
        assert shown == changes_between(db, first - 1, last), (first, last)
        if number == 1:
            assert set(read_after) == {first - 1}
        if number == 2:
            assert 0 < max(read_after) < first - 1


def test_kept_starts_are_copies_and_only_the_most_recent_are_kept(db: Connection) -> None:
    """What a fold does to the records it starts from never reaches those kept; past
    `most` tickets the least recently used are dropped, and folded from their first
    event again."""
    since, until = at(db, 3_000).recorded_at, at(db, 7_500).recorded_at  # type: ignore[union-attr]
    window = review(db, since, until, tally=OpenTally(block=700))
    kept = Startpoints(most=30)
    first = changes(db, window, limit=50, kept=kept)
    again = changes(db, window, limit=50, kept=kept)
    assert again == first == changes(db, window, limit=50)
    held = kept.before(window.touched[:50], window.first - 1)
    assert list(held) == window.touched[20:50]
    at_start = state_at(db, window.first - 1)
    for ticket_id, (position, record) in held.items():
        assert position == window.first - 1
        replayed = at_start.get(ticket_id)
        assert (record is None) == (replayed is None)
        if record is not None and replayed is not None:
            assert (record.state, record.title, record.details, record.custom_tags) == (
                replayed.state,
                replayed.title,
                replayed.details,
                replayed.custom_tags,
            )
    assert kept.before(window.touched[:50], window.first - 2) == {}
    # Two pages folding at once (two threads) each fold their own copies.
    for _, record in held.values():
        if record is not None:
            record.title = "folded on by another page"
    again_held = kept.before(window.touched[:50], window.first - 1)
    assert all(r is None or r.title != "folded on by another page" for _, r in again_held.values())


@pytest.mark.parametrize(
    "ranges", [[(1, 999), (3_997, 4_995), (7, 6)], [(17_983, 18_981), (19_980, 20_000)]]
)
def test_a_few_events_counted_from_their_rows_count_as_the_database_counts(
    db: Connection, ranges: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window's cut-short edges are counted in Python from their rows, larger ranges by
    the database's GROUP BYs: the two agree on every kind and every ticket's ends."""
    from_rows = audit_window.count(db, ranges)
    monkeypatch.setattr(audit_window, "_FEW_EVENTS", 0)
    by_database = audit_window.count(db, ranges)
    for rows, grouped in zip(from_rows, by_database, strict=True):
        assert sorted(rows.tallies, key=repr) == sorted(grouped.tallies, key=repr)
        assert rows.ends == grouped.ends
    kinds = {kind for counted in from_rows for kind in counted.ends.values()}
    # Tickets reopened and closed again inside a range among them.
    assert ("closed", "closed", True) in kinds


@pytest.fixture(scope="module")
def hours_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A log of 9,000 events three seconds apart (7.5 hours): windows of whole hours."""
    yield from _spaced_log(tmp_path_factory, 9_000, 500, timedelta(seconds=3))


@pytest.mark.parametrize(("first", "last"), [(1, 9_000), (1_234, 5_678), (2_000, 2_100)])
def test_kept_counts_of_whole_buckets_are_what_counting_afresh_gives(
    hours_log: sqlite3.Connection, first: int, last: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = hours_log
    since, until = at(db, first).recorded_at, at(db, last).recorded_at  # type: ignore[union-attr]
    fresh = review(db, since, until, tally=OpenTally())
    kept = Rollups()
    assert review(db, since, until, tally=OpenTally(), kept=kept) == fresh
    counting = audit_window.count
    counted: list[tuple[int, int]] = []

    def count(db: sqlite3.Connection, ranges: list[tuple[int, int]]) -> list[Any]:
        counted.extend(ranges)
        return counting(db, ranges)

    monkeypatch.setattr(audit_window, "count", count)
    # Again: no bucket is counted from the events, whole or cut short by the window's ends.
    assert review(db, since, until, tally=OpenTally(), kept=kept) == fresh
    assert counted == []
    # A shorter window sharing its whole buckets: only its own cut-short end is counted.
    if last - 700 > first:
        sooner = at(db, last - 700).recorded_at  # type: ignore[union-attr]
        shorter = review(db, since, sooner, tally=OpenTally())
        counted.clear()
        assert review(db, since, sooner, tally=OpenTally(), kept=kept) == shorter
        assert len(counted) == 1 < len(shorter.buckets)
    counted.clear()
    # Nothing kept (a restart, or no room): every bucket counted again, the same answer.
    counted.clear()
    assert review(db, since, until, tally=OpenTally(), kept=Rollups(most_tickets=0)) == fresh
    assert len(counted) == len(fresh.buckets)


@pytest.fixture(scope="module")
def days_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A log of 6,000 events a minute apart from 2024-01-01 00:00 (four days and more)."""
    yield from _spaced_log(tmp_path_factory, 6_000, 300, timedelta(minutes=1))


def _spaced_log(
    factory: pytest.TempPathFactory, events: int, wave: int, spacing: timedelta
) -> Iterator[sqlite3.Connection]:
    """A log of `events` events `spacing` apart, read from a file of its own."""
    path: Path = factory.mktemp("spaced") / "log.db"
    build_log(path, events, wave=wave, spacing=spacing)
    conn = connect_sync(path)
    yield conn
    conn.close()


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2024-01-02T00:00:00.000000Z", "2024-01-03T00:00:00.000000Z"),
        ("2024-01-01T09:30:00.000000Z", "2024-01-04T09:30:00.000000Z"),
        ("2024-01-02T09:30:00.000000Z", "2024-01-03T09:30:00.000000Z"),
        ("2024-01-02T09:00:00.000000Z", "2024-01-03T09:17:00.000000Z"),
        ("2024-01-02T10:07:00.000000Z", "2024-01-02T11:07:00.000000Z"),
    ],
)
def test_the_run_of_whole_buckets_is_kept_merged_and_says_what_counting_afresh_says(
    days_log: sqlite3.Connection, since: str, until: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = days_log
    fresh = review(db, since, until, tally=OpenTally())
    kept = Rollups()
    assert review(db, since, until, tally=OpenTally(), kept=kept) == fresh
    merging, merged = audit_window._merged, []

    def counted_merge(pieces: list[Any]) -> Any:
        merged.extend(len(piece) for piece in pieces)
        return merging(pieces)

    monkeypatch.setattr(audit_window, "_merged", counted_merge)
    assert review(db, since, until, tally=OpenTally(), kept=kept) == fresh
    # Again: the whole buckets' tickets are kept merged; only the tickets of the two
    # buckets the window's ends cut short (and those tickets' ends over the run) are
    # merged afresh, and a window of whole buckets only is not merged at all.
    first, last = fresh.first, fresh.last
    edges = [
        (first, _first_at(db, fresh.buckets[1].start) - 1),
        (_first_at(db, fresh.buckets[-1].start), last),
    ]
    cut_short = [len(bucket.ends) for bucket in audit_window.count(db, edges)]
    whole_day = since.endswith("T00:00:00.000000Z") and until.endswith("T00:00:00.000000Z")
    assert merged == [] if whole_day else sum(merged) <= 2 * sum(cut_short) < fresh.counts.tickets


def test_kept_bucket_starts_are_where_the_log_says_and_past_its_end_asked_again(
    days_log: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, kept = days_log, Rollups()
    end = db.execute("SELECT MAX(recorded_at) FROM events").fetchone()[0]
    times = [
        "2024-01-01T09:30:00.000000Z",
        "2024-01-02T00:00:00.000000Z",
        end,
        "2099-01-01T00:00:00.000000Z",
    ]
    fresh = stored.firsts_from(db, times)
    assert fresh[-1] is None and None not in fresh[:-1]
    assert kept.firsts(db, times) == fresh
    asked: list[str] = []
    finding = stored.firsts_from

    def noted(db: sqlite3.Connection, moments: list[str]) -> list[int | None]:
        asked.extend(moments)
        return finding(db, moments)

    monkeypatch.setattr(stored, "firsts_from", noted)
    assert kept.firsts(db, times) == fresh
    # A time no event has reached yet may be reached by the next one: never kept.
    assert asked == times[-1:]


def _first_at(db: sqlite3.Connection, moment: str) -> int:
    return stored.firsts_from(db, [moment])[0] or 0


def test_windows_that_share_kept_runs_say_what_counting_afresh_says(
    days_log: sqlite3.Connection,
) -> None:
    """Windows one after another on one `Rollups`, each from and to any minute of the
    log: whatever was kept for one window, the next says what counting afresh says."""
    db, kept = days_log, Rollups()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for offset, length in [(0, 1440), (570, 1440), (571, 1500), (630, 1440), (575, 1380),
                           (1440, 2880), (1441, 2879), (2000, 60), (2003, 57), (1, 4000),
                           (570, 1440), (3000, 1440), (3010, 1430)]:  # fmt: skip
        since = format_utc(start + timedelta(minutes=offset))
        until = format_utc(start + timedelta(minutes=offset + length))
        assert review(db, since, until, tally=OpenTally(), kept=kept) == review(
            db, since, until, tally=OpenTally()
        ), (since, until)


_ENDS = st.dictionaries(
    st.sampled_from([str(n) for n in range(12)]),
    st.tuples(
        st.sampled_from(["new", "pending", "open", "closed", "reopened"]),
        st.sampled_from(["new", "pending", "open", "closed", "reopened"]),
        st.booleans(),
    ),
    max_size=8,
)


@given(
    before=st.lists(_ENDS, max_size=2),
    run=st.lists(_ENDS, min_size=1, max_size=4),
    after=st.lists(_ENDS, max_size=2),
)
def test_edges_merged_around_a_kept_run_say_what_merging_every_piece_says(
    before: list[Any], run: list[Any], after: list[Any]
) -> None:
    """The run's list and counts mended for its edges' tickets are those of all the
    pieces merged one after another, tickets that never came to exist included."""
    kept = audit_window.touches(run)
    assert audit_window._around(kept, before, after) == audit_window.touches(
        [*before, *run, *after]
    )


def test_a_ticket_refused_on_one_day_and_created_the_next_counts_as_created() -> None:
    """A day kept merged remembers the tickets that did not exist by its end: a later
    piece may create them (and only then are they touched)."""
    kept = Rollups()
    quiet = audit_window.Counted([], {"7": ("new", "new", False), "8": ("open", "closed", False)})
    day = kept.run((1, 2), [quiet])
    assert day.touched == ["8"] and day.counts.created == 0 and day.counts.closed == 1
    later = {"7": ("new", "pending", False)}
    both = audit_window.touches([day.ends, later])
    assert both.touched == ["7", "8"] and both.counts.created == 1
    assert kept.run((1, 2), []) is day


@pytest.mark.parametrize(
    ("since", "until", "size"),
    [
        ("2024-01-01T00:10:00.000000Z", "2024-01-01T07:20:00.000000Z", timedelta(minutes=30)),
        ("2024-01-01T01:00:00.000000Z", "2024-01-02T01:00:00.000000Z", timedelta(hours=1)),
        ("2024-01-01T01:30:00.000000Z", "2024-01-02T01:29:00.000000Z", timedelta(hours=1)),
        ("2024-01-01T01:30:00.000000Z", "2024-01-08T01:29:00.000000Z", timedelta(hours=12)),
    ],
)
def test_buckets_fall_on_the_clock(
    hours_log: sqlite3.Connection, since: str, until: str, size: timedelta
) -> None:
    """Whole periods from midnight UTC, the window's ends cutting the first and last
    short: at most 24 whole buckets and the two parts."""
    window = review(hours_log, since, until, tally=OpenTally())
    assert bucket_size(since, until) == size
    starts = [datetime.fromisoformat(b.start) for b in window.buckets]
    ends = [datetime.fromisoformat(b.end) for b in window.buckets]
    assert (window.buckets[0].start, window.buckets[-1].end) == (since, until)
    assert all(end - start <= size for start, end in zip(starts, ends, strict=True))
    midnight = starts[0].replace(hour=0, minute=0, second=0, microsecond=0)
    assert all((start - midnight) % size == timedelta(0) for start in starts[1:])
    assert [b.start for b in window.buckets[1:]] == [b.end for b in window.buckets[:-1]]
    assert len(window.buckets) <= 25


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2024-01-01T00:10:00.250001Z", "2024-01-01T07:20:00.000000Z"),
        ("0999-03-01T01:30:00.000007Z", "0999-05-08T01:29:00.000000Z"),
        ("2023-12-31T23:59:59.999999Z", "2024-01-02T00:00:00.000001Z"),
    ],
)
def test_bucket_times_are_written_as_the_log_writes_times(
    hours_log: sqlite3.Connection, since: str, until: str
) -> None:
    """Each bucket's start and end in the log's format (compared as text with the log's
    times), on the clock or not, with microseconds, years before 1000."""
    window = review(hours_log, since, until, tally=OpenTally())
    assert len(window.buckets) > 2
    for bucket in window.buckets:
        for moment in (bucket.start, bucket.end):
            assert format_utc(datetime.fromisoformat(moment)) == moment


def _counted_from(
    states: dict[str, tuple[str | None, str]], db: Connection, first: int, last: int
) -> Touched:
    """The window's summary worked out from full replays at both ends and diff's states."""
    before, after = state_at(db, first - 1), state_at(db, last)
    events = list(iter_after(db, first - 1, last))
    touched = {e.ticket_id for e in events if e.ticket_id} & set(after)
    was = {t: before[t].state.value if t in before else None for t in touched}
    now = {t: after[t].state.value for t in touched}
    reopened = {
        e.ticket_id for e in events if (e.state_before, e.state_after) == ("closed", "reopened")
    }
    assert {t for t in touched if was[t] != now[t]} == set(states)
    return Touched(
        tickets=len(touched),
        created=sum(was[t] is None for t in touched),
        closed=sum(now[t] == "closed" and was[t] != "closed" for t in touched),
        reopened=len(reopened & touched),
        still_open=sum(was[t] in OPEN_STATES and now[t] in OPEN_STATES for t in touched),
    )


@pytest.mark.parametrize(("start", "end"), [(0, 20_000), (12_345, 20_000), (20_000, 7_000), (5, 6)])
def test_counts_carried_along_the_log_are_counts(db: Connection, start: int, end: int) -> None:
    def counted(position: int) -> dict[str, int]:
        return dict(Counter(t.state.value for t in state_at(db, position).values()))

    assert carry_counts(db, counted(start), start, end) == counted(end)


def test_a_count_is_carried_from_the_last_one(db: Connection) -> None:
    counts = StateCounts()
    fresh = counts(db)
    assert fresh == state_counts(db)
    # As if the last page had been rendered at position 15,000: the same answer, carried.
    past = dict(Counter(t.state.value for t in state_at(db, 15_000).values()))
    counts._known = (15_000, past)
    assert counts(db) == fresh

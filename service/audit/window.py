"""An incident window: what its events did, for the review page.

The database reads the window's events once for the charts and once for the tickets
(`storage.window.tallies`, `ticket_ends`) and hands back counts, not rows: actions per
time bucket by kind (so by outcome, and the number of open tickets after each bucket),
and each touched ticket's first and last event. The number open
when the window starts comes from an `OpenTally`: the open count at every 1,024th
position, summed once per process and kept (the log is append-only, so a sum of past
events never changes), plus the few events since the nearest one. No step replays the
log from its beginning, and none walks from the window to an end of the log.

A ticket's state at the window's ends comes from the `state_before` of its first event
in the window and the `state_after` of its last, the states the ledger derived when it
appended them (and that `psa-ledger verify` derives again). What changed in each field
(`changes`) is each touched ticket's own stream folded by the same `Rewind` as
`psa-ledger diff`, a page of tickets at a time; a ticket the window did not touch did
not change, so the pages together are exactly diff's rows.
"""

from __future__ import annotations

import sqlite3
import threading
from bisect import bisect_right
from collections import Counter
from datetime import datetime, timedelta

import msgspec

from service.audit.replay import Change, compare
from service.storage import activity as stored_activity
from service.storage import window as stored
from service.storage.events import first_position_from, last_position_at
from service.timestamps import format_utc
from statemachine.events import Outcome
from statemachine.projection import Rewind

__all__ = [
    "OPEN_STATES",
    "OUTCOME_ORDER",
    "Bucket",
    "ChangesPage",
    "OpenTally",
    "Review",
    "Touched",
    "bucket_size",
    "changes",
    "review",
]

#: The states in which a ticket still needs someone: "open tickets" on the chart.
OPEN_STATES = frozenset({"pending", "open", "reopened"})
#: The stacking order of the bars: what went through first, refusals on top.
OUTCOME_ORDER = (
    Outcome.ACCEPTED.value,
    Outcome.RECORDED.value,
    Outcome.DUPLICATE.value,
    Outcome.EXISTING.value,
    Outcome.CONNECTION_TEST.value,
    Outcome.REJECTED.value,
    Outcome.NOT_FOUND.value,
    Outcome.MISMATCH.value,
    Outcome.INVALID.value,
)
#: Bucket sizes a person reads without arithmetic; the first that gives at most
#: `_MOST_BUCKETS` buckets is used.
_SIZES = [timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 180, 360, 720, 1440, 10080, 43200)]
_MOST_BUCKETS = 24


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    """Actions recorded at `start` <= recorded_at < `end` (the last bucket includes `end`)."""

    start: str
    end: str
    outcomes: dict[str, int]
    #: Open tickets once this bucket's events are in.
    open_after: int

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


class Touched(msgspec.Struct, frozen=True, kw_only=True):
    """The tickets a window touched, counted as `psa-ledger diff` sees their states at its
    start and end (a ticket that did not exist at the start was created)."""

    tickets: int
    created: int
    closed: int
    reopened: int
    #: Open at the start and at the end.
    still_open: int


class Review(msgspec.Struct, frozen=True, kw_only=True):
    since: str
    until: str
    #: The window as log positions; `first > last` when it holds no event.
    first: int
    last: int
    events: int
    open_at_start: int
    buckets: list[Bucket]
    #: The ncentralTicketId of every ticket the window touched, in order.
    touched: list[str]
    counts: Touched


class OpenTally:
    """How many tickets were open at any log position, from sums kept along the log.

    Counting from the window to an end of the log costs a walk over up to half of it
    (seconds on a million events). Instead, the open count is kept at every `block`-th
    position: each block's net moves summed once, in one pass the first time a position
    that far is asked for, and never again (positions are gapless and the log append-only,
    so a block once complete never changes). A count anywhere is then the kept count at
    the block boundary before it plus at most `block - 1` events.
    """

    def __init__(self, *, block: int = 1024) -> None:
        self._block = block
        self._lock = threading.Lock()
        #: Open tickets once the first `k * block` events were in, for k = 0, 1, ...
        self._kept = [0]

    def __call__(self, db: sqlite3.Connection, position: int) -> int:
        """Open tickets once the first `position` events were in (`position` <= the head)."""
        boundary = position // self._block
        with self._lock:
            if len(self._kept) <= boundary:
                # Never a block the log has not finished: it would be kept short.
                boundary = min(boundary, stored_activity.head_position(db) // self._block)
            while len(self._kept) <= boundary:
                done = (len(self._kept) - 1) * self._block
                moved = stored.net_entered(db, done + 1, done + self._block, OPEN_STATES)
                self._kept.append(self._kept[-1] + moved)
            kept = self._kept[boundary]
        start = boundary * self._block
        if position == start:
            return kept
        return kept + stored.net_entered(db, start + 1, position, OPEN_STATES)


class ChangesPage(msgspec.Struct, frozen=True):
    """Diff's rows for a page of the window's tickets; `next` is where the next page starts."""

    rows: list[Change]
    next: str | None


def review(db: sqlite3.Connection, since: str, until: str, *, tally: OpenTally) -> Review:
    """The window `since`..`until` (ISO-8601 UTC as the log writes it, both inclusive).

    Each bucket is a position range (the log's times grow with its positions). The
    database counts each range's events by kind and finds each touched ticket's first and
    last event; Python sees a few hundred counts and one row per ticket, never a row per
    event.
    """
    first = first_position_from(db, since)
    last = last_position_at(db, until)
    if first is None:
        first = last + 1
    starts = _bucket_starts(since, until)
    bounds = _bucket_bounds(db, starts, first, last)
    start_count = tally(db, first - 1)
    buckets = _buckets(stored.tallies(db, bounds), starts, until, start_count)
    # Not those only refused requests named: tickets that never came to exist.
    touched = [row for row in sorted(stored.ticket_ends(db, first, last)) if row[2] != "new"]
    return Review(
        since=since,
        until=until,
        first=first,
        last=last,
        events=sum(b.total for b in buckets),
        open_at_start=start_count,
        buckets=buckets,
        touched=[ticket_id for ticket_id, _, _, _ in touched],
        counts=_counted(touched),
    )


def changes(
    db: sqlite3.Connection,
    window: Review,
    *,
    after: str | None = None,
    limit: int = 50,
    ticket: str | None = None,
) -> ChangesPage:
    """`psa-ledger diff`'s rows for the window's tickets after ticket `after`, `limit` of them
    (only `ticket`'s when given).

    Each ticket's events (those that can change what it shows) are folded by `Rewind` up
    to the window's start, copied, and folded on to its end; the two are compared field by
    field as diff compares them. Tickets come in ncentralTicketId order, as diff lists them.
    """
    touched = [t for t in window.touched if ticket is None or t == ticket]
    begin = bisect_right(touched, after) if after is not None else 0
    page = touched[begin : begin + limit]
    rewind = Rewind()
    rewind.fold(stored.stream_rows(db, page, 0, window.first - 1), window.first - 1)
    then = {tid: msgspec.structs.replace(record) for tid, record in rewind.records.items()}
    rewind.fold(stored.stream_rows(db, page, window.first - 1, window.last), window.last)
    more = begin + limit < len(touched)
    return ChangesPage(compare(then, rewind.records), page[-1] if more and page else None)


def bucket_size(since: str, until: str) -> timedelta:
    """The bucket width for a window: the smallest readable size giving few enough bars."""
    length = _parse(until) - _parse(since)
    for size in _SIZES:
        if length <= size * _MOST_BUCKETS:
            return size
    return length / _MOST_BUCKETS


def _bucket_starts(since: str, until: str) -> list[str]:
    size = bucket_size(since, until)
    start, end = _parse(since), _parse(until)
    starts = [since]
    for count in range(1, _MOST_BUCKETS + 1):
        try:
            moment = start + size * count
        except OverflowError:  # a window that ends near 9999-12-31
            break
        if moment > end:
            break
        starts.append(format_utc(moment))
    return starts


def _buckets(
    tallies: list[stored.Tally], starts: list[str], until: str, open_at_start: int
) -> list[Bucket]:
    """The buckets from their events counted by kind: outcomes, and open tickets carried
    from the window's start by each kind's move into or out of the open states."""
    outcomes: list[Counter[str]] = [Counter() for _ in starts]
    moved = [0] * len(starts)
    for index, outcome, before, after, count in tallies:
        outcomes[index][outcome] += count
        if before and after:
            moved[index] += count * ((after in OPEN_STATES) - (before in OPEN_STATES))
    buckets, running = [], open_at_start
    ends = [*starts[1:], until]
    for start, end, counted, change in zip(starts, ends, outcomes, moved, strict=True):
        running += change
        buckets.append(Bucket(start=start, end=end, outcomes=dict(counted), open_after=running))
    return buckets


def _bucket_bounds(
    db: sqlite3.Connection, starts: list[str], first: int, last: int
) -> list[tuple[int, int]]:
    """Each bucket's positions: from the first event at its start to the one before the
    next bucket's (the window's `first..last` cut in order; empty ranges where quiet)."""
    lows = [first]
    for found in stored.firsts_from(db, starts[1:]):
        lows.append(min(max(found if found is not None else last + 1, first), last + 1))
    highs = [low - 1 for low in lows[1:]] + [last]
    return list(zip(lows, highs, strict=True))


def _counted(ends: list[stored.Ends]) -> Touched:
    return Touched(
        tickets=len(ends),
        created=sum(before == "new" for _, before, _, _ in ends),
        closed=sum(after == "closed" and before != "closed" for _, before, after, _ in ends),
        reopened=sum(bool(reopened) for _, _, _, reopened in ends),
        still_open=sum(b in OPEN_STATES and a in OPEN_STATES for _, b, a, _ in ends),
    )


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))

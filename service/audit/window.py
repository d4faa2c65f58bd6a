"""An incident window: what its events did, for the review page.

The database counts each time bucket's events (`storage.window.tallies`, `ticket_ends`)
and hands back counts, not rows: actions by kind (so by outcome, and the number of open
tickets after each bucket), and each touched ticket's first and last event. A bucket is
a range of log positions, and what a range holds never changes (the log is append-only),
so the counts of each bucket are kept in memory by `Rollups` and summed again for any
later window that holds them: whole buckets (whole hours, for a day) for any window of
that day, and the two the window's ends cut short for the same window asked again (its
timeline paged, or the page reloaded). What the window's run of whole buckets did to
its tickets is kept merged too (a whole day, or the 23 whole hours of a day from 09:30),
so that a review merges only its edges' tickets into it.
The number open when the window starts comes from an `OpenTally`: the open count at
every 128th position, summed once per process and kept (the log is append-only, so a
sum of past events never changes), plus or minus the few events between the nearest
one and the window. No step replays the log from its beginning, and none walks from the
window to an end of the log.

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
from collections import Counter, OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta
from sys import intern

import msgspec

from service.audit.replay import Change, compare
from service.audit.startpoints import Startpoints
from service.storage import activity as stored_activity
from service.storage import window as stored
from service.storage.events import first_position_from, last_position_at
from statemachine.events import Outcome
from statemachine.projection import Record, Rewind
from statemachine.ticket import State

__all__ = [
    "OPEN_STATES",
    "OUTCOME_ORDER",
    "Bucket",
    "ChangesPage",
    "Counted",
    "OpenTally",
    "Review",
    "Rollups",
    "Touched",
    "Touches",
    "bucket_size",
    "changes",
    "count",
    "review",
    "touches",
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
#: `_MOST_BUCKETS` buckets is used. Those up to a day fall on the clock (whole hours,
#: quarter hours...), so that windows share whole buckets; the window's ends cut
#: its first and last bucket short (so a day may have 25: 24 whole and two parts).
_SIZES = [timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 180, 360, 720, 1440, 10080, 43200)]
_ON_THE_CLOCK = timedelta(days=1)
_MOST_BUCKETS = 24
#: Ranges of fewer positions are counted from their rows (`count`).
_FEW_EVENTS = 1_000
_CLOSED, _REOPENED = State.CLOSED.value, State.REOPENED.value


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
    the nearer block boundary, before it or after it, and at most `block / 2` events.
    """

    def __init__(self, *, block: int = 128) -> None:
        self._block = block
        self._lock = threading.Lock()
        #: Open tickets once the first `k * block` events were in, for k = 0, 1, ...
        self._kept = [0]

    def warm(self, db: sqlite3.Connection) -> None:
        """Sum every block the log has finished now, so that no review waits for it: the
        server does this once after it starts."""
        self(db, stored_activity.head_position(db))

    @property
    def summed(self) -> int:
        """How many of the log's first events the kept sums cover."""
        return (len(self._kept) - 1) * self._block

    def __call__(self, db: sqlite3.Connection, position: int) -> int:
        """Open tickets once the first `position` events were in (`position` <= the head)."""
        boundary = position // self._block
        with self._lock:
            if len(self._kept) <= boundary:
                # Never a block the log has not finished: it would be kept short. The
                # block after the position's too, when finished: it may be nearer.
                finished = stored_activity.head_position(db) // self._block
                boundary = min(boundary, finished)
                self._sum_to(db, min(boundary + 1, finished))
            kept = self._kept[boundary]
            after = self._kept[boundary + 1] if len(self._kept) > boundary + 1 else None
        start = boundary * self._block
        if position == start:
            return kept
        end = start + self._block
        if after is not None and end - position < position - start:
            # Nearer the next kept sum: the events up to it taken off it, half as many.
            return after - stored.net_entered(db, position + 1, end, OPEN_STATES)
        return kept + stored.net_entered(db, start + 1, position, OPEN_STATES)

    def _sum_to(self, db: sqlite3.Connection, boundary: int) -> None:
        """Keep the count at each block boundary up to `boundary` (the lock held)."""
        if len(self._kept) <= boundary:
            done = (len(self._kept) - 1) * self._block
            high = boundary * self._block
            for moved in stored.net_entered_by_block(db, done + 1, high, self._block, OPEN_STATES):
                self._kept.append(self._kept[-1] + moved)


class Counted(msgspec.Struct, frozen=True):
    """What the database counted in one range of log positions."""

    #: (outcome, state_before, state_after, events) for each kind of event in the range.
    tallies: list[tuple[str, str | None, str | None, int]]
    #: Each ticket with a stated event in the range: (its state before the first of them,
    #: after the last, whether one of them reopened it).
    ends: dict[str, tuple[str, str, bool]]


class Touches(msgspec.Struct, frozen=True):
    """What a run of buckets did to its tickets: each one's ends over the run (as in
    `Counted.ends`, those that never came to exist included: a later run may create
    them), the ncentralTicketId of those the run touched that exist at its end, in
    order, and their counts at a glance."""

    ends: dict[str, tuple[str, str, bool]]
    touched: list[str]
    counts: Touched


class Rollups:
    """The counts of whole buckets, and what runs of them did, kept in memory for the next
    window that holds them.

    Keyed by the bucket's range of log positions, not by its time: the events at a range
    of positions never change, so a kept count is never stale, and a window whose bucket
    came out as another range (an event that was still to come) simply counts it afresh.
    Whole buckets are where any window's bucket of that period starts and ends; the
    buckets a window's ends cut short are kept too, for the same window asked again
    (0.1 ms of a review from 09:30 to 09:30 counted two half hours' rows). A window's
    run of whole buckets (a whole day, midnight to midnight UTC, or the 23 whole hours
    of a day from 09:30) is kept once more as their `Touches`, merged and keyed by the
    run's positions: the next window with that run merges in only its edges' tickets,
    not 2,700 ends of 24 hours (a merge is per ticket, in Python). At most
    `most_tickets` tickets' ends are held, the least recently used dropped first. The
    positions bucket starts fall at are kept too (`firsts`), as many as that.
    """

    def __init__(self, *, most_tickets: int = 50_000) -> None:
        self._most = most_tickets
        self._lock = threading.Lock()
        #: By (low, high, whether it is a run's): a run's range may be one of its
        #: buckets' when the others were quiet.
        self._kept: OrderedDict[tuple[int, int, bool], Counted | Touches] = OrderedDict()
        self._held = 0
        #: Times and the first position at or after each, the first found dropped first.
        self._firsts: OrderedDict[str, int] = OrderedDict()
        self._most_times = most_tickets

    def __call__(self, db: sqlite3.Connection, ranges: list[tuple[int, int]]) -> list[Counted]:
        """Each range's counts: kept ones as kept, the rest from the log (and kept, but for
        empty ranges: they count nothing)."""
        found = self._find_all([(*key, False) for key in ranges])
        missing = [index for index, known in enumerate(found) if known is None]
        for index, fresh in zip(missing, count(db, [ranges[i] for i in missing]), strict=True):
            found[index] = fresh
            low, high = ranges[index]
            if low <= high:
                self._keep((low, high, False), fresh)
        return [known for known in found if isinstance(known, Counted)]

    def firsts(self, db: sqlite3.Connection, times: list[str]) -> list[int | None]:
        """For each of `times`, the first position recorded at or after it
        (`storage.window.firsts_from`). Once found it never changes: later events come
        after it, at times no earlier. So found ones are kept (the bucket starts of any
        window on the clock), and a time past the log's end (None) is asked again."""
        with self._lock:
            found = [self._firsts.get(moment) for moment in times]
        missing = [index for index, known in enumerate(found) if known is None]
        if not missing:
            return found
        reached = {}
        for index, fresh in zip(
            missing, stored.firsts_from(db, [times[i] for i in missing]), strict=True
        ):
            found[index] = fresh
            if fresh is not None:
                reached[times[index]] = fresh
        with self._lock:
            self._firsts.update(reached)
            while len(self._firsts) > self._most_times:
                self._firsts.popitem(last=False)
        return found

    def run(self, key: tuple[int, int], buckets: list[Counted]) -> Touches:
        """What the run of whole buckets at position range `key` did, merged from its
        `buckets` once."""
        known = self._find((*key, True))
        if isinstance(known, Touches):
            return known
        fresh = touches([bucket.ends for bucket in buckets])
        self._keep((*key, True), fresh)
        return fresh

    def _find(self, key: tuple[int, int, bool]) -> Counted | Touches | None:
        return self._find_all([key])[0]

    def _find_all(self, keys: list[tuple[int, int, bool]]) -> list[Counted | Touches | None]:
        """What is kept at each of `keys` (None where nothing is), under one hold of the lock."""
        found = []
        with self._lock:
            for key in keys:
                known = self._kept.get(key)
                if known is not None:
                    self._kept.move_to_end(key)
                found.append(known)
        return found

    def _keep(self, key: tuple[int, int, bool], kept: Counted | Touches) -> None:
        with self._lock:
            if key in self._kept:
                return
            self._kept[key] = kept
            self._held += len(kept.ends) + 1
            while self._held > self._most and self._kept:
                _, dropped = self._kept.popitem(last=False)
                self._held -= len(dropped.ends) + 1


def count(db: sqlite3.Connection, ranges: list[tuple[int, int]]) -> list[Counted]:
    """Each position range counted from its events. Empty ranges (low > high) hold
    nothing. Ranges of a few hundred events (a window's cut-short edges) are counted
    here from their rows; the others by the database, all of them in two statements (the
    kinds, the tickets' ends), whose GROUP BYs cost more than a few hundred narrow rows
    read (0.31 against 0.16 ms for two half hours of the bench's log)."""
    many = [index for index, (low, high) in enumerate(ranges) if high - low >= _FEW_EVENTS]
    counted = [
        _counted_rows(stored.marks(db, low, high)) if high - low < _FEW_EVENTS else Counted([], {})
        for low, high in ranges
    ]
    asked = [ranges[index] for index in many]
    for index, outcome, before, after, events in stored.tallies(db, asked) if asked else []:
        counted[many[index]].tallies.append((outcome, before, after, events))
    for index, ticket_id, before, after, reopened in stored.ticket_ends(db, asked) if asked else []:
        # One string per state, not one per row: kept counts hold many of them.
        counted[many[index]].ends[ticket_id] = (intern(before), intern(after), bool(reopened))
    return counted


def touches(ends: list[dict[str, tuple[str, str, bool]]]) -> Touches:
    """What buckets one after another did to their tickets, from each one's ends."""
    merged = _merged(ends)
    exists = {ticket_id: kept for ticket_id, kept in merged.items() if kept[1] != "new"}
    return Touches(merged, sorted(exists), _counted(exists))


class ChangesPage(msgspec.Struct, frozen=True):
    """Diff's rows for a page of the window's tickets; `next` is where the next page starts."""

    rows: list[Change]
    next: str | None


def review(
    db: sqlite3.Connection,
    since: str,
    until: str,
    *,
    tally: OpenTally,
    kept: Rollups | None = None,
) -> Review:
    """The window `since`..`until` (ISO-8601 UTC as the log writes it, both inclusive).

    Each bucket is a position range (the log's times grow with its positions). The
    database counts each range's events by kind and finds each touched ticket's first and
    last event, or `kept` has them from an earlier window; Python sees a few hundred
    counts and one row per ticket a bucket, never a row per event.
    """
    first = first_position_from(db, since)
    last = last_position_at(db, until)
    if first is None:
        first = last + 1
    starts = _bucket_starts(since, until)
    firsts = kept.firsts if kept is not None else stored.firsts_from
    bounds = _bucket_bounds(firsts(db, starts[1:]), first, last)
    start_count = tally(db, first - 1)
    if kept is None:
        counted = count(db, bounds)
        touched = touches([bucket.ends for bucket in counted])
    else:
        run = _run_of_whole(starts, until)
        counted = kept(db, bounds)
        touched = _touches(counted, bounds, run, kept)
    buckets = _buckets(counted, starts, until, start_count)
    return Review(
        since=since,
        until=until,
        first=first,
        last=last,
        events=sum(b.total for b in buckets),
        open_at_start=start_count,
        buckets=buckets,
        touched=touched.touched,
        counts=touched.counts,
    )


def changes(
    db: sqlite3.Connection,
    window: Review,
    *,
    after: str | None = None,
    limit: int = 50,
    ticket: str | None = None,
    kept: Startpoints | None = None,
) -> ChangesPage:
    """`psa-ledger diff`'s rows for the window's tickets after ticket `after`, `limit` of them
    (only `ticket`'s when given).

    Each ticket's events (those that can change what it shows) are folded by `Rewind` up
    to the window's start, copied, and folded on to its end; the two are compared field by
    field as diff compares them. Tickets come in ncentralTicketId order, as diff lists them.
    A ticket `kept` as of the start or earlier is folded on from there, not from its first
    event; every ticket of the page is kept as of the start for the next page.
    """
    touched = window.touched if ticket is None else [t for t in window.touched if t == ticket]
    begin = bisect_right(touched, after) if after is not None else 0
    page = touched[begin : begin + limit]
    start = window.first - 1
    found = kept.before(page, start) if kept is not None else {}
    rewind = Rewind({t: record for t, (_, record) in found.items() if record is not None})
    # The page's streams read to the window's end, each from where it is kept (else from
    # its first event), in one statement a position; split at the start (each ticket's
    # rows stay in log order).
    rows = [
        row
        for since, tickets in _by_kept_position(page, found).items()
        for row in stored.stream_rows(db, tickets, since, window.last)
    ]
    rewind.fold([row for row in rows if row[0] <= start], start)
    then = {tid: msgspec.structs.replace(record) for tid, record in rewind.records.items()}
    if kept is not None:
        kept.keep(start, {t: then.get(t) for t in page})
    rewind.fold([row for row in rows if row[0] > start], window.last)
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
    """`since`, then each later bucket's start: on the clock (multiples of the size since
    midnight UTC) for sizes up to a day, else every `size` from `since`."""
    size = bucket_size(since, until)
    # Naive UTC: a naive datetime's isoformat costs half an aware one's (24 starts a page).
    start, end = _parse(since).replace(tzinfo=None), _parse(until).replace(tzinfo=None)
    if _on_the_clock(size):
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        start = midnight + size * ((start - midnight) // size)
    starts, moment = [since], start
    for _ in range(_MOST_BUCKETS + 1):
        try:
            moment += size
        except OverflowError:  # a window that ends near 9999-12-31
            break
        if moment >= end:
            break
        # Without `timespec`, isoformat costs half as much, and leaves out zero microseconds.
        written = moment.isoformat()
        starts.append(f"{written}Z" if moment.microsecond else f"{written}.000000Z")
    return starts


def _run_of_whole(starts: list[str], until: str) -> tuple[int, int] | None:
    """The first and last index of the window's run of buckets that are whole periods on
    the clock (all but the window's ends when they cut theirs short), when it holds two
    or more: what the run did is kept merged (`Rollups.run`)."""
    size = bucket_size(starts[0], until)
    if not _on_the_clock(size):
        return None
    # Those between the first and the last run from a start on the clock to the next.
    ends = [*starts[1:], until]
    first = 0 if _parse(ends[0]) - _parse(starts[0]) == size else 1
    last = len(ends) - (1 if _parse(ends[-1]) - _parse(starts[-1]) == size else 2)
    return (first, last) if last > first else None


def _on_the_clock(size: timedelta) -> bool:
    return size <= _ON_THE_CLOCK and _ON_THE_CLOCK % size == timedelta(0)


def _buckets(
    counted: list[Counted], starts: list[str], until: str, open_at_start: int
) -> list[Bucket]:
    """The buckets from their events counted by kind: outcomes, and open tickets carried
    from the window's start by each kind's move into or out of the open states."""
    buckets, running = [], open_at_start
    ends = [*starts[1:], until]
    for start, end, kinds in zip(starts, ends, counted, strict=True):
        outcomes: dict[str, int] = {}
        for outcome, before, after, events in kinds.tallies:
            outcomes[outcome] = outcomes.get(outcome, 0) + events
            if before and after:
                running += events * ((after in OPEN_STATES) - (before in OPEN_STATES))
        buckets.append(Bucket(start=start, end=end, outcomes=outcomes, open_after=running))
    return buckets


def _touches(
    counted: list[Counted],
    bounds: list[tuple[int, int]],
    run: tuple[int, int] | None,
    kept: Rollups,
) -> Touches:
    """What the window did to its tickets: its run of whole buckets as kept, and the
    buckets its ends cut short merged in around it."""
    if run is None:
        return touches([bucket.ends for bucket in counted])
    first, last = run
    whole = kept.run((bounds[first][0], bounds[last][1]), counted[first : last + 1])
    edges = (
        [bucket.ends for bucket in counted[:first]],
        [bucket.ends for bucket in counted[last + 1 :]],
    )
    return _around(whole, *edges)


def _around(
    run: Touches,
    before: list[dict[str, tuple[str, str, bool]]],
    after: list[dict[str, tuple[str, str, bool]]],
) -> Touches:
    """What the `before` pieces, the run, and the `after` pieces did, one after another.

    Only the tickets of the pieces around the run (a window's two cut-short edges: a
    tenth of a day's tickets) are merged afresh; the run's list and counts are mended
    for them, not made again from its thousands of tickets."""
    edges = [ends for ends in [*before, *after] if ends]
    if not edges:
        return run
    inside = {t: run.ends[t] for ends in edges for t in ends if t in run.ends}
    fresh = _merged([*before, inside, *after])
    was = {t: kept for t, kept in inside.items() if kept[1] != "new"}
    now = {t: kept for t, kept in fresh.items() if kept[1] != "new"}
    touched = run.touched
    if was.keys() != now.keys():
        gone = was.keys() - now.keys()
        touched = sorted(
            [t for t in run.touched if t not in gone] + [t for t in now if t not in was]
        )
    counts = _sum(_sum(run.counts, _counted(now), 1), _counted(was), -1)
    return Touches({**run.ends, **fresh}, touched, counts)


def _by_kept_position(
    tickets: list[str], found: dict[str, tuple[int, Record | None]]
) -> dict[int, list[str]]:
    """The tickets by the position their stream is read after: where each is kept, else 0
    (its first event); in their order within each."""
    groups: dict[int, list[str]] = {}
    for ticket_id in tickets:
        groups.setdefault(found[ticket_id][0] if ticket_id in found else 0, []).append(ticket_id)
    return groups


def _counted_rows(marks: Iterable[stored.Mark]) -> Counted:
    """A range counted from its rows, in log order: what `stored.tallies` and
    `stored.ticket_ends` count (a ticket's ends only from events with both states)."""
    kinds: dict[tuple[str, str | None, str | None], int] = {}
    ends: dict[str, tuple[str, str, bool]] = {}
    for mark in marks:
        before, after = mark.state_before, mark.state_after
        kind = (mark.outcome, before, after)
        kinds[kind] = kinds.get(kind, 0) + 1
        if mark.ticket_id is None or not before or not after:
            continue
        reopening = before == _CLOSED and after == _REOPENED
        known = ends.get(mark.ticket_id)
        if known is not None:
            before, reopening = known[0], known[2] or reopening
        ends[mark.ticket_id] = (intern(before), intern(after), reopening)
    return Counted([(*kind, events) for kind, events in kinds.items()], ends)


def _merged(pieces: list[dict[str, tuple[str, str, bool]]]) -> dict[str, tuple[str, str, bool]]:
    """Each ticket's ends over pieces one after another: its state before its first
    piece's first event, after its last piece's last, whether one reopened it. Tickets
    that only refused requests named (they never came to exist) end in `new`."""
    ends: dict[str, tuple[str, str, bool]] = {}
    for piece in pieces:
        for ticket_id, (before, after, reopened) in piece.items():
            known = ends.get(ticket_id)
            if known is not None:
                before, reopened = known[0], known[2] or reopened
            ends[ticket_id] = (before, after, reopened)
    return ends


def _bucket_bounds(found_at: list[int | None], first: int, last: int) -> list[tuple[int, int]]:
    """Each bucket's positions: from the first event at its start (`found_at`, the first
    position at or after each start but the window's) to the one before the next bucket's
    (the window's `first..last` cut in order; empty ranges where quiet)."""
    lows = [first]
    for found in found_at:
        lows.append(min(max(found if found is not None else last + 1, first), last + 1))
    highs = [low - 1 for low in lows[1:]] + [last]
    return list(zip(lows, highs, strict=True))


def _sum(counts: Touched, more: Touched, sign: int) -> Touched:
    """`counts` plus (or, with `sign` -1, minus) `more`: counts of tickets apart add up."""
    return Touched(
        tickets=counts.tickets + sign * more.tickets,
        created=counts.created + sign * more.created,
        closed=counts.closed + sign * more.closed,
        reopened=counts.reopened + sign * more.reopened,
        still_open=counts.still_open + sign * more.still_open,
    )


def _counted(ends: dict[str, tuple[str, str, bool]]) -> Touched:
    """The tickets at a glance, counted a kind of ends at a time (a few dozen kinds for
    thousands of tickets: the kinds are counted by `Counter`, in C)."""
    created = closed = reopened = still_open = 0
    for (before, after, reopening), tickets in Counter(ends.values()).items():
        created += tickets * (before == "new")
        closed += tickets * (after == "closed" and before != "closed")
        reopened += tickets * reopening
        still_open += tickets * (before in OPEN_STATES and after in OPEN_STATES)
    return Touched(
        tickets=len(ends),
        created=created,
        closed=closed,
        reopened=reopened,
        still_open=still_open,
    )


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))

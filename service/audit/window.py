"""An incident window: what its events did, in one pass over it, for the review page.

One pass over the window's events (their narrow columns only, see `storage.window.marks`)
gives both charts and the summary of what changed: actions counted per time bucket and
outcome, the number of open tickets after each bucket, and each touched ticket's state
at both ends. The number open when the window starts is today's count (an index count
of the `tickets` projection) minus what the events since then changed, read as an
aggregate over the primary key, so no step replays the log from its beginning.

A ticket's state at the window's ends comes from the `state_before` of its first event
in the window and the `state_after` of its last, the states the ledger derived when it
appended them (and that `psa-ledger verify` derives again). A ticket the window did not
touch did not change, so the state changes listed here are exactly those of
`psa-ledger diff T1 T2`.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec

from service.storage import activity as stored_activity
from service.storage import window as stored
from service.storage.events import first_position_from, last_position_at
from service.timestamps import format_utc
from statemachine.events import Outcome

__all__ = [
    "OPEN_STATES",
    "OUTCOME_ORDER",
    "Bucket",
    "Review",
    "TicketChange",
    "bucket_size",
    "open_at",
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
_MOST_BUCKETS = 48


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


class TicketChange(msgspec.Struct, frozen=True, kw_only=True):
    """One ticket the window touched: its state at both ends, as `psa-ledger diff` has it."""

    ticket_id: str
    #: None: the ticket did not exist when the window began.
    before: str | None
    after: str
    reopened: bool


class Review(msgspec.Struct, frozen=True, kw_only=True):
    since: str
    until: str
    #: The window as log positions; `first > last` when it holds no event.
    first: int
    last: int
    events: int
    open_at_start: int
    buckets: list[Bucket]
    #: Every ticket the window touched, by ncentralTicketId order.
    tickets: list[TicketChange]

    @property
    def created(self) -> list[TicketChange]:
        return [t for t in self.tickets if t.before is None]

    @property
    def closed(self) -> list[TicketChange]:
        return [t for t in self.tickets if t.after == "closed" and t.before != "closed"]

    @property
    def reopened(self) -> list[TicketChange]:
        return [t for t in self.tickets if t.reopened]

    @property
    def still_open(self) -> list[TicketChange]:
        return [t for t in self.tickets if t.before in OPEN_STATES and t.after in OPEN_STATES]

    @property
    def state_changes(self) -> list[TicketChange]:
        return [t for t in self.tickets if t.before != t.after]


def review(
    db: sqlite3.Connection,
    since: str,
    until: str,
    *,
    counts: Callable[[sqlite3.Connection], dict[str, int]] = stored_activity.state_counts,
) -> Review:
    """The window `since`..`until` (ISO-8601 UTC as the log writes it, both inclusive).

    `counts` gives today's tickets by state (`activity.StateCounts` carries them along).
    """
    first = first_position_from(db, since)
    last = last_position_at(db, until)
    if first is None:
        first = last + 1
    starts = _bucket_starts(since, until)
    tallies: list[Counter[str]] = [Counter() for _ in starts]
    moved = [0] * len(starts)
    ends: dict[str, list[str | None]] = {}
    reopened: set[str] = set()
    events = 0
    for mark in stored.marks(db, first, last):
        events += 1
        index = max(bisect_right(starts, mark.recorded_at) - 1, 0)
        tallies[index][mark.outcome] += 1
        before, after = mark.state_before, mark.state_after
        if mark.ticket_id is None or before is None or after is None:
            continue
        moved[index] += _opened(before, after)
        seen = ends.setdefault(mark.ticket_id, [before, after])
        seen[1] = after
        if before == "closed" and after == "reopened":
            reopened.add(mark.ticket_id)
    start_count = open_at(db, first - 1, counts=counts)
    buckets, running = [], start_count
    for index, start in enumerate(starts):
        running += moved[index]
        end = starts[index + 1] if index + 1 < len(starts) else until
        buckets.append(
            Bucket(start=start, end=end, outcomes=dict(tallies[index]), open_after=running)
        )
    tickets = [
        TicketChange(
            ticket_id=ticket_id,
            before=None if before == "new" else before,
            after=str(after),
            reopened=ticket_id in reopened,
        )
        for ticket_id, (before, after) in sorted(ends.items())
        # Only refused requests for a ticket that never came to exist.
        if after != "new"
    ]
    return Review(
        since=since,
        until=until,
        first=first,
        last=last,
        events=events,
        open_at_start=start_count,
        buckets=buckets,
        tickets=tickets,
    )


def open_at(
    db: sqlite3.Connection,
    position: int,
    *,
    counts: Callable[[sqlite3.Connection], dict[str, int]] = stored_activity.state_counts,
) -> int:
    """How many tickets were open once the first `position` events were in.

    Today's count less what every event since `position` did; when that is the longer
    way (a window early in the log), what every event up to `position` did, from nothing.
    """
    head = stored_activity.head_position(db)
    if position < head - position:
        return stored.net_entered(db, 1, position, OPEN_STATES)
    now = sum(n for state, n in counts(db).items() if state in OPEN_STATES)
    if position >= head:
        return now
    return now - stored.net_entered(db, position + 1, head, OPEN_STATES)


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


def _opened(before: str, after: str) -> int:
    """+1 when an event opened a ticket, -1 when it closed one, else 0."""
    return int(after in OPEN_STATES) - int(before in OPEN_STATES)


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))

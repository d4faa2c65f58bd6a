"""The proof: the hash chain holds, the rules derive again what the log recorded, and every
checkpoint holds the tickets a replay from genesis finds at its position.

One pass over the log's rows, cut so that both cores share the work: a ticket's events
depend on no other ticket's, so the tickets are cut into ranges of ids
(`events.ticket_ranges`), each checked in a worker process of its own. For each row of its
tickets a part

- hashes the row: since each row carries its `prev_hash`, each row's hash is checked on
  its own, where its columns are read anyway;
- has the `Projection` re-derive its outcome and states from the events before it.

Each part also checks every checkpoint's tickets of that part against the replay at its
position, folds time travel's `Rewind` from the last sound checkpoint to the log's end and
compares it with the replay (so the fold that time travel runs is proven too), and
compares its rows of the `tickets` table with what the replay produces. Each part checks
the chain's links too, as far as its rows can (`links`): each row must follow the previous
position by one and carry the previous row's hash as `prev_hash`. With one or two parts
that proves every link of a sound log; the database says where they broke when it is not
(`events.links_to_check`), and with more parts checks them all while the parts replay.
Meanwhile this process checks that no row sits below position 1, where the writer never
puts one (`events.before_first`).

An edited row breaks its own hash, a removed one leaves a gap and a broken link, a moved
one breaks both; an attacker who rewrites the whole chain consistently is still caught by
the rules unless the rewritten history is itself a lawful one.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

import msgspec

from service.audit.links import Links, PartLinks, linked
from service.storage import checkpoints, events, rows
from service.storage import tickets as ticket_rows
from service.storage.shared import Shared, shared
from statemachine.events import GENESIS_HASH, HASHED_COLUMNS, chain_hash_values
from statemachine.projection import Projection, Rewind, Stream, gc_paused

__all__ = ["Finding", "Report", "verify"]


class Finding(msgspec.Struct, frozen=True):
    position: int
    problem: str


class Report(msgspec.Struct, frozen=True):
    events: int
    tickets: int
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings


#: Below this many events the worker processes cost more than they save. The log's last
#: position stands for its count here: counting scans the log, and the workers would wait.
PARALLEL_FROM = 50_000


def verify(
    db: sqlite3.Connection,
    *,
    progress: Callable[[int, int], None] | None = None,
    every: int = 100_000,
    keep: int = 20,
    workers: int = 1,
    parallel_from: int = PARALLEL_FROM,
) -> Report:
    """Check the whole log; keeps the first `keep` findings, in position order.

    With `workers` > 1, a log of some size is checked in that many worker processes, a
    part of the tickets each (`storage.shared`): on SQLite each reads the file up to
    `db`'s last position; on PostgreSQL each reads `db`'s own snapshot, so there `db`
    must be inside one, or one process checks it all. `progress` hears how many events
    have been checked: every `every` events in one process, as each part ends in workers.
    """
    last = events.last_position(db)
    source = shared(db) if workers > 1 and last >= parallel_from else None
    parallel = source is not None
    with _pool(workers if parallel else 0) as pool:
        ruled = _started(pool, source, db, workers, last, keep)
        # Counted once the workers, if any, have started: they need no count.
        total = events.count(db)
        if not ruled:
            told = _Told(progress, every, total)
            ruled = [_done(_rules_part_of(db, events.EVERY_TICKET, True, last, keep, told))]
        # Up to two parts prove the links themselves; the database checks more parts' links
        # while the workers replay.
        paired = len(ruled) <= 2
        links = [] if paired else _links_in_database(db, last, keep)
        links += [Finding(p, _BEFORE_FIRST.format(p)) for p in events.before_first(db, keep)]
        links += [
            Finding(last, _PAST_THE_END.format(p))
            for p in checkpoints.positions_after(db, last)[:keep]
        ]
        parts = _in_turn(ruled, total, progress if parallel else None)
        if paired and not linked([part.links for part in parts]):
            links += _links_in_database(db, last, keep)
    findings = [f for part in parts for f in (*part.edited, *part.findings)]
    findings = _first(links + findings, keep)
    if len(findings) < keep:
        table = [f for part in parts for f in part.table_findings]
        table += _later_problems(db, {t: row for part in parts for t, row in part.later.items()})
        findings = _first(findings + _first(table, keep - len(findings)), keep)
    count = sum(part.count for part in parts)
    return Report(count, sum(part.tickets for part in parts), findings)


class _RulesPart(msgspec.Struct):
    """What a worker found checking the rows of one part of the tickets."""

    count: int
    tickets: int
    #: Rows that do not hash to their recorded hash: kept apart from the rules' findings,
    #: so that each list holds its own first `keep`.
    edited: list[Finding]
    findings: list[Finding]
    table_findings: list[Finding]
    #: The tickets whose rows the part read as changed after the log's last position
    #: (`_later`), each with the row the replay makes of it (None: no such ticket).
    later: dict[str, tuple[Any, ...] | None]
    links: PartLinks


def _in_turn(
    parts: list[Future[_RulesPart]], total: int, progress: Callable[[int, int], None] | None
) -> list[_RulesPart]:
    """Each part's result, telling `progress` as each ends."""
    checked = 0
    for part in parts:
        checked += part.result().count
        if progress is not None:
            progress(checked, total)
    return [part.result() for part in parts]


def _first(findings: list[Finding], keep: int) -> list[Finding]:
    """The first `keep` findings by position, each once (parts may find the same one)."""
    unique = dict.fromkeys(findings)
    return sorted(unique, key=lambda f: (f.position, f.problem))[:keep]


def _started(
    pool: ProcessPoolExecutor | None,
    source: Shared | None,
    db: sqlite3.Connection,
    workers: int,
    last: int,
    keep: int,
) -> list[Future[_RulesPart]]:
    """A part of the tickets checked in each worker, if there are workers."""
    if pool is None or source is None:
        return []
    return [
        pool.submit(_rules_part, source, tickets, n == 0, last, keep)
        for n, tickets in enumerate(events.ticket_ranges(db, workers))
    ]


def _rules_part(
    source: Shared, tickets: events.TicketRange, first: bool, last: int, keep: int
) -> _RulesPart:
    with source.reading() as db:
        return _rules_part_of(db, tickets, first, last, keep)


class _Told:
    """Tells `progress` every `every` events (the one-process verify)."""

    def __init__(self, progress: Callable[[int, int], None] | None, every: int, total: int) -> None:
        self.progress, self.every, self.total = progress, every, total

    def __call__(self, count: int) -> None:
        if self.progress is not None and count % self.every == 0:
            self.progress(count, self.total)


def _rules_part_of(
    db: sqlite3.Connection,
    tickets: events.TicketRange,
    first: bool,
    last: int,
    keep: int,
    told: Callable[[int], None] | None = None,
) -> _RulesPart:
    """Hash each row of `tickets` and replay it, checking each event, each checkpoint, and
    at the end time travel's fold and the `tickets` table. The `first` part also says what
    is wrong with a whole checkpoint.

    With the cyclic collector paused: the replay's objects form no cycle, and the
    collector, woken every few hundred allocations, would walk its tickets over and over.
    """
    with gc_paused():
        return _checked_part(db, tickets, first, last, keep, told)


def _checked_part(
    db: sqlite3.Connection,
    tickets: events.TicketRange,
    first: bool,
    last: int,
    keep: int,
    told: Callable[[int], None] | None,
) -> _RulesPart:
    projection = Projection()
    last_position: dict[str, int] = {}
    findings: list[Finding] = []
    edited: list[Finding] = []
    count = 0
    links = Links()
    ahead = _Checkpoints(db, tickets, first, last)
    for row in events.rows_for_rules(db, last, tickets):
        position, ticket_id = row[0], row[1]
        if position > ahead.position:
            findings += ahead.check(projection, position)
        count += 1
        hashed = chain_hash_values(row[:HASHED_COLUMNS], row[_PREV_HASH])
        if hashed != row[_HASH] and len(edited) < keep:
            edited.append(Finding(position, _EDITED))
        links.follow(position, row[_PREV_HASH], row[_HASH])
        problems = projection.apply_row(row)
        if problems and len(findings) < keep:
            findings += [Finding(position, p) for p in problems]
        if ticket_id is not None:
            last_position[ticket_id] = position
            ahead.changed.add(ticket_id)
        if told is not None:
            told(count)
    findings += ahead.check(projection, 2**62)
    replayed = projection.records()
    rewind = ahead.sound()
    rewind.fold(events.rewind_rows(db, rewind.position, last, tickets), last)
    if rewind.records != replayed:
        findings.append(Finding(last, "time travel's fold does not give the replayed tickets"))
    expected = _expected_rows(projection.streams, last_position)
    stored = ticket_rows.rows_by_ticket(db, tickets)
    later = _later(stored, expected, last)
    table = _table_problems(expected, stored)
    return _RulesPart(
        count, len(replayed), edited, findings[:keep], _first(table, keep), later, links.ended(last)
    )


def _expected_rows(
    streams: dict[str, Stream], last_position: dict[str, int]
) -> dict[str, tuple[Any, ...]]:
    """The `tickets` row the replay makes of each ticket."""
    return {
        ticket_id: rows.ticket_row(ticket_id, stream, last_position[ticket_id])
        for ticket_id, stream in streams.items()
        if stream.ticket is not None
    }


def _later(
    stored: dict[str, tuple[Any, ...]], expected: dict[str, tuple[Any, ...]], last: int
) -> dict[str, tuple[Any, ...] | None]:
    """The tickets whose stored rows name a position past `last`, taken out of `stored`
    and `expected`: `verify` checks them in its own snapshot.

    A worker process on SQLite reads the file as it is when it starts, and a service
    still writing may have changed those rows since `verify` took its snapshot. In that
    snapshot no row names a position past `last`: one that does is a lie, and
    `_later_problems` says so.
    """
    ids = [t for t, row in stored.items() if row[_LAST_POSITION] > last]
    for ticket_id in ids:
        del stored[ticket_id]
    return {ticket_id: expected.pop(ticket_id, None) for ticket_id in ids}


def _later_problems(
    db: sqlite3.Connection, later: dict[str, tuple[Any, ...] | None]
) -> list[Finding]:
    """What is wrong with the `later` tickets' rows as `db`'s snapshot holds them."""
    if not later:
        return []
    held = ticket_rows.rows_of(db, sorted(later))
    expected = {t: row for t, row in later.items() if row is not None}
    return _table_problems(expected, held)


class _Checkpoints:
    """The checkpoints, in position order, each checked against a part's replay when the
    replay reaches its position.

    The replay's tickets are kept encoded as a checkpoint encodes them, each encoded again
    only when one of its events was replayed since the last checkpoint (`changed`): a
    checkpoint's record is then checked by comparing bytes, and decoded only when they
    differ (a record encoded otherwise, or a lie). A full checkpoint must hold exactly the
    replayed tickets; a delta must be on the checkpoint just before it, which held, and
    hold every ticket whose record changed since, as replayed.
    """

    def __init__(
        self, db: sqlite3.Connection, tickets: events.TicketRange, first: bool, last: int
    ) -> None:
        self.changed: set[str] = set()
        self.position = 0
        self._every = checkpoints.every(db)
        self._tickets, self._first, self._last = tickets, first, last
        self._replayed: dict[str, msgspec.Raw] = {}
        #: The last checkpoint that held, if it was the one just checked: a delta's base.
        self._previous: tuple[int, dict[str, msgspec.Raw]] | None = None
        self._sound: tuple[int, dict[str, msgspec.Raw]] = (0, {})
        self._next()

    def check(self, projection: Projection, reached: int) -> list[Finding]:
        """Check every checkpoint before `reached` against `projection`, which holds the
        events before it."""
        findings = []
        while self._checkpoint is not None and self._checkpoint.position < reached:
            problem = self._problem(self._checkpoint, projection)
            if problem is not None:
                findings.append(Finding(min(self._checkpoint.position, self._last), problem))
            self._next()
        return findings

    def sound(self) -> Rewind:
        """Time travel's start: the part's tickets at the last checkpoint that held."""
        position, held = self._sound
        return Rewind({}, position, held=dict(held), decode=checkpoints.record_of)

    def _next(self) -> None:
        """The next checkpoint through the log's last position. One past it is either
        made since `verify` took its snapshot (read by a worker on SQLite) or a lie, which
        `verify` tells from its own snapshot (`checkpoints.positions_after`)."""
        self._checkpoint = next(self._every, None)
        if self._checkpoint is not None and self._checkpoint.position > self._last:
            self._checkpoint = None
        self.position = self._checkpoint.position if self._checkpoint is not None else 2**62

    def _problem(self, checkpoint: checkpoints.Checkpoint, projection: Projection) -> str | None:
        # A problem with the whole checkpoint is said by the first part only.
        whole = self._first
        changed = self._encode_changed(projection)
        previous, self._previous = self._previous, None
        held = checkpoints.raw_records_of(checkpoint)
        if held is None:
            damaged = "checkpoint is damaged (its snapshot does not match its digest)"
            return damaged if whole else None
        mine = self._tickets.kept(held.records)
        if held.base == 0:
            state = mine
            if len(mine) != len(self._replayed) or not self._agree(mine):
                return "checkpoint differs from the tickets replayed to its position"
        else:
            if previous is None or previous[0] != held.base:
                return (
                    f"checkpoint is a delta on position {held.base}, not on the sound one before it"
                )
            state = previous[1]
            if not changed.issubset(mine) or not self._agree(mine):
                return "checkpoint differs from the tickets replayed to its position"
            state.update(mine)
        self._previous = self._sound = (checkpoint.position, state)
        return None

    def _agree(self, held: dict[str, msgspec.Raw]) -> bool:
        replayed = self._replayed
        return all(
            replayed.get(tid) == raw or _same(replayed.get(tid), raw) for tid, raw in held.items()
        )

    def _encode_changed(self, projection: Projection) -> set[str]:
        """Encode again the tickets with events since the last checkpoint; those whose
        record changed (or that were created) since."""
        changed = set()
        for ticket_id in self.changed:
            record = projection.record(ticket_id)
            if record is None:
                continue
            encoded = msgspec.Raw(checkpoints.encode_record(record))
            if self._replayed.get(ticket_id) != encoded:
                self._replayed[ticket_id] = encoded
                changed.add(ticket_id)
        self.changed.clear()
        return changed


def _same(replayed: msgspec.Raw | None, held: msgspec.Raw) -> bool:
    """Whether two encoded records hold the same ticket, in whatever order their tags."""
    if replayed is None:
        return False
    record = checkpoints.record_of(held)
    return record is not None and record == checkpoints.record_of(replayed)


_BEFORE_FIRST = (
    "a row at position {}, before the log's first position (1): the writer never puts one"
    " there, so it came from outside"
)


def _links_in_database(db: sqlite3.Connection, last: int, keep: int) -> list[Finding]:
    return [f for link in events.links_to_check(db, last, keep) for f in _link_findings(link)]


def _link_findings(link: events.Link) -> list[Finding]:
    expected = link.previous_hash if link.previous_hash is not None else GENESIS_HASH
    problems = _link_problems(link.position, link.previous, link.prev_hash, expected)
    return [Finding(link.position, problem) for problem in problems]


def _link_problems(position: int, previous: int, recorded: str, expected: str) -> list[str]:
    problems = []
    if position != previous + 1:
        problems.append(f"position {position} follows {previous}: rows are missing or moved")
    if recorded != expected:
        problems.append("prev_hash is not the hash of the row before (the chain is broken)")
    return problems


@contextmanager
def _pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes forked from this one (the shell's: no threads to inherit)."""
    if workers == 0:
        yield None
        return
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def _table_problems(
    expected: dict[str, tuple[Any, ...]], stored: dict[str, tuple[Any, ...]]
) -> list[Finding]:
    """Rows of `tickets` (taken out of `stored`) that are not the rows the replay makes
    (`expected`), and tickets it lacks."""
    findings = []
    for ticket_id, made in expected.items():
        row = stored.pop(ticket_id, None)
        if row != made:
            what = "is missing" if row is None else "differs from the replayed ticket"
            findings.append(
                Finding(int(made[_LAST_POSITION]), f"tickets row for {ticket_id!r} {what}")
            )
    findings += [
        Finding(int(row[_LAST_POSITION]), f"tickets row for {ticket_id!r} has no CREATE in the log")
        for ticket_id, row in stored.items()
    ]
    return findings


_LAST_POSITION = rows.TICKET_COLUMNS.index("last_position")
_PREV_HASH, _HASH = HASHED_COLUMNS, HASHED_COLUMNS + 1
_EDITED = "the row does not hash to its recorded hash (it was edited)"
_PAST_THE_END = "checkpoint at position {} is past the log's end"

"""The proof: the hash chain holds, the rules derive again what the log recorded, and every
checkpoint holds the tickets a replay from genesis finds at its position.

Three checks, each one pass over the log, which can run side by side:

- the chain: each row must follow the previous position by one, carry the previous row's
  hash as `prev_hash`, and hash to its own `hash`. Since each row carries its `prev_hash`,
  every row's hash can be checked on its own: the log is cut into position ranges, hashed
  in worker processes, and only the links between ranges are checked here;
- the rules: the `Projection` re-derives each outcome and state from the events before
  it, and last, every row of the `tickets` table must be what it produces;
- the checkpoints: a `Rewind` from genesis is compared with each checkpoint at its
  position, and at the end with the `Projection`, so time travel's fold is proven too.

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
from itertools import pairwise
from pathlib import Path
from typing import Any

import msgspec

from service.storage import checkpoints, events, rows, tickets
from service.storage.sqlite import connect_sync, file_of, snapshot
from statemachine.events import GENESIS_HASH, chain_hash_values
from statemachine.projection import Projection, Record, Rewind, Stream

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


#: Below this many events the worker processes cost more than they save.
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

    With `workers` > 1, the chain and the checkpoints are checked in that many worker
    processes while this one re-derives the states (a file-backed log of some size only).
    """
    total = events.count(db)
    last = events.last_position(db)
    path = file_of(db)
    parallel = workers > 1 and path is not None and total >= parallel_from
    with _pool(workers if parallel else 0) as pool:
        if pool is not None and path is not None:
            ranges = _ranges(last, 2 * workers)
            parts = [pool.submit(_chain_part, path, low, high, keep) for low, high in ranges]
            rewound = pool.submit(_rewind_part, path, last, keep)
        else:
            parts = [_done(_chain_part_of(db, 0, last, keep))]
            rewound = _done(_rewind_part_of(db, last, keep))
        projection, count, last_position, rule_findings = _rules(db, progress, every, total, keep)
        findings = _links([part.result() for part in parts]) + rule_findings
        checked = rewound.result()
    findings += checked.findings
    replayed = projection.records()
    if checked.digest != _digest(replayed):
        findings.append(Finding(last, "time travel's fold does not give the replayed tickets"))
    findings = sorted(findings, key=lambda f: f.position)[:keep]
    if len(findings) < keep:
        findings += _table_problems(db, projection.streams, last_position)[: keep - len(findings)]
    return Report(count, len(replayed), sorted(findings, key=lambda f: f.position))


class _ChainPart(msgspec.Struct):
    """What a worker found in one range of positions, and how the range starts and ends."""

    count: int
    first_position: int
    first_prev_hash: str
    last_position: int
    last_hash: str
    findings: list[Finding]


class _Rewound(msgspec.Struct):
    digest: str
    findings: list[Finding]


def _rules(
    db: sqlite3.Connection,
    progress: Callable[[int, int], None] | None,
    every: int,
    total: int,
    keep: int,
) -> tuple[Projection, int, dict[str, int], list[Finding]]:
    projection = Projection()
    last_position: dict[str, int] = {}
    findings: list[Finding] = []
    count = 0
    for event in events.iter_for_rules(db):
        count += 1
        problems = projection.apply(event)
        if problems and len(findings) < keep:
            findings += [Finding(event.position, p) for p in problems]
        if event.ticket_id is not None:
            last_position[event.ticket_id] = event.position
        if progress is not None and count % every == 0:
            progress(count, total)
    return projection, count, last_position, findings


def _chain_part(path: Path, low: int, high: int, keep: int) -> _ChainPart:
    with _reading(path) as db:
        return _chain_part_of(db, low, high, keep)


def _chain_part_of(db: sqlite3.Connection, after: int, through: int, keep: int) -> _ChainPart:
    """The rows after `after` through `through`: each hashed, each linked to the one before."""
    findings: list[Finding] = []
    count, first_position, first_prev = 0, 0, GENESIS_HASH
    previous, prev_hash = 0, GENESIS_HASH
    for row in events.raw_rows(db, after, through):
        position, recorded_prev, recorded_hash = row[0], row[13], row[14]
        problems = []
        if count == 0:
            first_position, first_prev = position, recorded_prev
        else:
            problems = _link_problems(position, previous, recorded_prev, prev_hash)
        if chain_hash_values(row[:13], recorded_prev) != recorded_hash:
            problems.append("the row does not hash to its recorded hash (it was edited)")
        if problems and len(findings) < keep:
            findings += [Finding(position, p) for p in problems]
        count += 1
        previous, prev_hash = position, recorded_hash
    return _ChainPart(count, first_position, first_prev, previous, prev_hash, findings)


def _links(parts: list[_ChainPart]) -> list[Finding]:
    """Each range's findings, and whether each range starts where the one before ended."""
    findings: list[Finding] = []
    previous, prev_hash = 0, GENESIS_HASH
    for part in parts:
        if part.count == 0:
            continue
        problems = _link_problems(part.first_position, previous, part.first_prev_hash, prev_hash)
        findings += [Finding(part.first_position, p) for p in problems]
        findings += part.findings
        previous, prev_hash = part.last_position, part.last_hash
    return findings


def _link_problems(position: int, previous: int, recorded: str, expected: str) -> list[str]:
    problems = []
    if position != previous + 1:
        problems.append(f"position {position} follows {previous}: rows are missing or moved")
    if recorded != expected:
        problems.append("prev_hash is not the hash of the row before (the chain is broken)")
    return problems


def _rewind_part(path: Path, last: int, keep: int) -> _Rewound:
    with _reading(path) as db:
        return _rewind_part_of(db, last, keep)


def _rewind_part_of(db: sqlite3.Connection, last: int, keep: int) -> _Rewound:
    """Time travel's fold from genesis, checked against every checkpoint on the way."""
    rewind = Rewind()
    findings: list[Finding] = []
    for checkpoint in checkpoints.every(db):
        if checkpoint.position > last:
            findings.append(
                Finding(last, f"checkpoint at position {checkpoint.position} is past the log's end")
            )
            continue
        rewind.fold(
            events.rewind_rows(db, rewind.position, checkpoint.position), checkpoint.position
        )
        held = checkpoints.records_of(checkpoint)
        if held is None:
            problem = "is damaged (its snapshot does not match its digest)"
        elif held != rewind.records:
            problem = "differs from the tickets replayed to its position"
        else:
            continue
        if len(findings) < keep:
            findings.append(Finding(checkpoint.position, f"checkpoint {problem}"))
    rewind.fold(events.rewind_rows(db, rewind.position, last), last)
    return _Rewound(_digest(rewind.records), findings)


def _digest(records: dict[str, Record]) -> str:
    return checkpoints.snapshot_of(0, dict(sorted(records.items()))).digest


def _ranges(last: int, parts: int) -> list[tuple[int, int]]:
    """`parts` ranges of positions (after, through) covering 1..last."""
    cuts = [last * n // parts for n in range(parts + 1)]
    return list(pairwise(cuts))


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


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    db = connect_sync(path, readonly=True)
    try:
        with snapshot(db):
            yield db
    finally:
        db.close()


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def _table_problems(
    db: sqlite3.Connection, streams: dict[str, Stream], last_position: dict[str, int]
) -> list[Finding]:
    """Rows of `tickets` that the replay does not produce, and tickets it lacks."""
    findings = []
    stored = tickets.rows_by_ticket(db)
    for ticket_id, stream in streams.items():
        if stream.ticket is None:
            continue
        expected = rows.ticket_row(ticket_id, stream, last_position[ticket_id])
        row = stored.pop(ticket_id, None)
        if row != expected:
            what = "is missing" if row is None else "differs from the replayed ticket"
            findings.append(
                Finding(last_position[ticket_id], f"tickets row for {ticket_id!r} {what}")
            )
    findings += [
        Finding(int(row[_LAST_POSITION]), f"tickets row for {ticket_id!r} has no CREATE in the log")
        for ticket_id, row in stored.items()
    ]
    return findings


_LAST_POSITION = rows.TICKET_COLUMNS.index("last_position")

"""The proof: the hash chain holds, and the rules derive again what the log recorded.

One pass over the log, a chunk at a time: each row must follow the previous position by
one, carry the previous row's hash as `prev_hash`, and hash to its own `hash`; then the
`Projection` re-derives its outcome and states from the events before it. Last, every row
of the `tickets` table must be what the replay produces. An edited row breaks its own
hash, a removed one leaves a gap and a broken link, a moved one breaks both; an attacker
who rewrites the whole chain consistently is still caught by the rules unless the
rewritten history is itself a lawful one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import msgspec

from service.storage import events, rows, tickets
from statemachine.events import GENESIS_HASH, chain_hash
from statemachine.projection import Projection, Stream

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


def verify(
    db: sqlite3.Connection,
    *,
    progress: Callable[[int, int], None] | None = None,
    every: int = 100_000,
    keep: int = 20,
) -> Report:
    """Check the whole log; keeps the first `keep` findings, in position order."""
    total = events.count(db)
    projection = Projection()
    last_position: dict[str, int] = {}
    findings: list[Finding] = []
    previous, prev_hash, count = 0, GENESIS_HASH, 0
    for event in events.iter_after(db):
        count += 1
        problems = _link_problems(event.position, previous, event.prev_hash, prev_hash)
        if chain_hash(event, event.prev_hash) != event.hash:
            problems.append("the row does not hash to its recorded hash (it was edited)")
        problems += projection.apply(event)
        findings += [Finding(event.position, p) for p in problems][: keep - len(findings)]
        previous, prev_hash = event.position, event.hash
        if event.ticket_id is not None:
            last_position[event.ticket_id] = event.position
        if progress is not None and count % every == 0:
            progress(count, total)
    if len(findings) < keep:
        findings += _table_problems(db, projection.streams, last_position)[: keep - len(findings)]
    return Report(count, len(projection.tickets()), sorted(findings, key=lambda f: f.position))


def _link_problems(position: int, previous: int, recorded: str, expected: str) -> list[str]:
    problems = []
    if position != previous + 1:
        problems.append(f"position {position} follows {previous}: rows are missing or moved")
    if recorded != expected:
        problems.append("prev_hash is not the hash of the row before (the chain is broken)")
    return problems


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

"""The write path alone: what psa-ledger could answer if HTTP cost nothing.

The real `Ledger` runs in this process on a log of its own, with the serving process's
event loop (uvloop) and interpreter settings. Each of `connections` submitters sends
N-central's next request as soon as the last is answered, with `ingest.lua`'s mix and
bodies, as a wrk connection would: each answer still waits for its batch's COMMIT
(`synchronous=FULL` on SQLite). No socket, HTTP parser, auth or Litestar is in the way,
so these requests a second bound what the server can reach at that many connections:
`bench.ingest` prints them beside the bare Litestar baseline of the same round.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import msgspec
import uvloop

from service.ledger.intake import AnswerPolicy, RecordRequest
from service.ledger.writer import Ledger

__all__ = ["Alone", "body", "run"]

#: A cycle of ten, as in ingest.lua: the action, and which of the cycle's four tickets.
PLAN = [
    ("CREATE", 0), ("UPDATE", 0), ("CREATE", 1), ("UPDATE", 1), ("CREATE", 2),
    ("UPDATE", 2), ("RESOLVE", 0), ("CREATE", 3), ("UPDATE", 3), ("REOPEN", 0),
]  # fmt: skip
#: Before the counting starts: the cache and the file warm up, as under wrk's seeding.
WARM_UP_S = 0.5

_POLICY = AnswerPolicy(base_url="http://bench", create_mode="sync")


class Alone(msgspec.Struct, frozen=True):
    """Requests answered a second while counted, and the answers by status."""

    per_second: float
    statuses: dict[int, int]

    @property
    def errors(self) -> int:
        """Answers that were not 200: the mix is lawful, so there should be none."""
        return sum(count for status, count in self.statuses.items() if status != 200)


def run(db: Path | str, prefix: str, *, connections: int, seconds: float) -> Alone:
    """`connections` submitters for `seconds` (after `WARM_UP_S`) on the log at `db`; the
    tickets' ids start with `prefix` (digits), so that runs on one log stay apart."""
    return uvloop.run(_submitting(db, prefix, connections, seconds))


def body(action: str, ticket: str, sent: int = 0) -> bytes:
    """N-central's request, shaped as ingest.lua sends it: title, multi-line details,
    four custom tags."""
    return msgspec.json.encode(
        {
            "action": action,
            "ncentralTicketId": ticket,
            "title": f"Disk space low on SRV-{ticket} (C:)",
            "details": f"Device: SRV-{ticket}\nCustomer: Acme Ltd\nService: Disk Space - C:"
            f"\nState: Failed (97% used, 3.1 GB free)\nTriggered: request {sent}",
            "customTags": {
                "site": "Leeds",
                "customer": "Acme Ltd",
                "priority": "P2",
                "queue": "Servers",
            },
        }
    )


async def _submitting(db: Path | str, prefix: str, connections: int, seconds: float) -> Alone:
    ledger = Ledger(db)
    await ledger.open()
    statuses: Counter[int] = Counter()
    stop = asyncio.Event()
    try:
        submitters = [
            asyncio.create_task(_submitter(ledger, f"{prefix}{n:03d}", statuses, stop))
            for n in range(connections)
        ]
        await asyncio.sleep(WARM_UP_S)
        statuses.clear()
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        answered, elapsed = statuses.total(), time.perf_counter() - started
        stop.set()
        await asyncio.gather(*submitters)
    finally:
        await ledger.close()
    return Alone(answered / elapsed, dict(statuses))


async def _submitter(
    ledger: Ledger, owner: str, statuses: Counter[int], stop: asyncio.Event
) -> None:
    """One connection's requests, each sent once the last is answered: its own tickets,
    every request lawful (a RESOLVE after its CREATE, a REOPEN after its RESOLVE)."""
    sent = 0
    while not stop.is_set():
        cycle, (action, slot) = sent // 10, PLAN[sent % 10]
        ticket = f"{owner}{cycle:08d}{slot}"
        answer = await ledger.submit(
            RecordRequest(_POLICY, body(action, ticket, sent), actor="bench", request_id="-")
        )
        statuses[answer.status] += 1
        sent += 1

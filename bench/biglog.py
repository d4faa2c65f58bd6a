"""A large, lawful event log written straight into SQLite, hash chain included.

Going through the HTTP endpoint would take hours for a million events; this writes the
rows the ledger would have written, with `executemany`, and folds them through the same
`Projection` so the `tickets` table matches and `psa-ledger verify` passes on the result.
Tickets follow one life each (create, update, a retry, resolve, a refused update,
reopen, resolve, a repeated CREATE, reopen), interleaved in waves so that one ticket's
events are spread across the log as they are in production.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from service.settings import Settings
from service.storage import appends, checkpoints, sqlite
from service.storage.rows import event_row, ticket_row
from statemachine.events import GENESIS_HASH, Event, chain_hash
from statemachine.projection import Projection

__all__ = ["LIFE", "build_log"]

#: (action, outcome, state_before, state_after, actor); payload and answer are derived.
LIFE = [
    ("CREATE", "accepted", "new", "pending", "ncentral"),
    ("identity_delivered", "recorded", "pending", "open", "psa-ledger"),
    ("UPDATE", "accepted", "open", "open", "ncentral"),
    ("UPDATE", "duplicate", "open", "open", "ncentral"),
    ("RESOLVE", "accepted", "open", "closed", "ncentral"),
    ("UPDATE", "rejected", "closed", "closed", "ncentral"),
    ("REOPEN", "accepted", "closed", "reopened", "ncentral"),
    ("RESOLVE", "accepted", "reopened", "closed", "ncentral"),
    ("CREATE", "existing", "closed", "closed", "ncentral"),
    ("REOPEN", "accepted", "closed", "reopened", "ncentral"),
]


def build_log(
    path: Path,
    events: int,
    *,
    wave: int = 1000,
    check: bool = False,
    spacing: timedelta = timedelta(milliseconds=1),
    checkpoint_every: int = Settings().checkpoint_every,
) -> int:
    """Write about `events` events (whole ticket lives) to a new DB at `path`; returns the count.

    Events are `spacing` apart from 2024-01-01: a millisecond packs a million into 17
    minutes; the console's benchmark spreads them over a year, so that a day is a day.
    A checkpoint is written at every multiple of `checkpoint_every`, as the service would:
    every `checkpoints.FULL_EVERY`th full, the others deltas on the one before.
    """
    path.unlink(missing_ok=True)
    sqlite.connect_sync(path, readonly=False).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    tickets = max(events // len(LIFE), 1)
    projection = Projection()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    position, prev_hash, rows = 0, GENESIS_HASH, []
    created: dict[str, int] = {}
    last: dict[str, int] = {}
    checkpointing = checkpoints.Checkpointing(projection, checkpoint_every)
    db.execute("BEGIN")
    for first in range(0, tickets, wave):
        batch = range(first, min(first + wave, tickets))
        for step, (action, outcome, before, after, actor) in enumerate(LIFE):
            for number in batch:
                position += 1
                ticket_id = str(100_000 + number)
                if step == 0:
                    created[ticket_id] = position
                event = Event(
                    position=position,
                    ticket_id=ticket_id,
                    stream_version=step + 1,
                    action=action,
                    outcome=outcome,
                    state_before=before,
                    state_after=after,
                    recorded_at=_time(start + spacing * position),
                    request_id=f"req-{position}",
                    actor=actor,
                    payload=_payload(step, ticket_id, created[ticket_id], number),
                    response=_response(outcome, created[ticket_id]),
                    prev_hash=prev_hash,
                )
                event = msgspec.structs.replace(event, hash=chain_hash(event, prev_hash))
                prev_hash = event.hash
                problems = projection.apply(event)
                if check and problems:
                    raise AssertionError(f"position {position}: {problems}")
                last[ticket_id] = position
                rows.append(event_row(event))
                if made := checkpointing.passed(position, ticket_id):
                    db.execute(checkpoints.INSERT_CHECKPOINT, (*made, event.recorded_at))
            if len(rows) >= 50_000:
                db.executemany(appends.INSERT_EVENT, rows)
                rows = []
    db.executemany(appends.INSERT_EVENT, rows)
    db.executemany(
        appends.UPSERT_TICKET,
        [ticket_row(tid, stream, last[tid]) for tid, stream in projection.streams.items()],
    )
    db.execute("COMMIT")
    db.close()
    return position


_SITES = ["Leeds", "York", "Hull", "Bath"]


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _payload(step: int, ticket_id: str, created_at: int, number: int) -> str:
    action, _, _, _, _ = LIFE[step]
    body: dict[str, Any] = {"action": action, "ncentralTicketId": ticket_id}
    if action == "identity_delivered":
        return msgspec.json.encode({"via": "response", "createPosition": created_at}).decode()
    if action == "CREATE":
        body |= {
            "title": f"Disk almost full on host-{number}",
            "details": f"Device: host-{number}\nProblem: C: 97% used",
            "customTags": {"site": _SITES[number % len(_SITES)]},
        }
    if step in (2, 3):
        body["details"] = "C: 98% used"
    if step == 5:
        body["details"] = "C: 99% used"
    if action != "CREATE":
        body["psaTicketNumber"] = f"PSA-{created_at}"
    return msgspec.json.encode(body).decode()


def _response(outcome: str, created_at: int) -> str | None:
    if outcome == "recorded":
        return None
    if outcome == "rejected":
        return msgspec.json.encode(
            {"status": 409, "body": {"title": "Action not allowed"}}
        ).decode()
    identity = {
        "externalTicketId": f"PSA-{created_at}",
        "ticketUrl": f"http://b/tickets/PSA-{created_at}",
    }
    return msgspec.json.encode({"status": 200, "body": identity}).decode()

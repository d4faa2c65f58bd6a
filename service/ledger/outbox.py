"""The outbox: callbacks owed to N-central, kept as a projection of the callback events.

A `callbacks` row is written only by ledger commands, in the transaction of the event that
explains it: the accepted CREATE that owes the callback, each `callback_attempted`, the
`callback_delivered` or `callback_dead_lettered` that settles it, an operator's
`callback_retry_requested`. So the row can always be explained from the log, and a crash
can never leave an event without its row or a row without its event.

The two lease columns (`claim`, `lease_until`) are the exception: they are not facts about
the callback but a lock between workers, written through the ledger so that `BEGIN
IMMEDIATE` serialises two processes on one file and only one of them wins a row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import msgspec

from service.ledger.writer import Batch
from statemachine.events import Event, Fact, Outcome
from statemachine.projection import delivery

__all__ = [
    "ACTOR",
    "CLAIMED",
    "LISTED",
    "NEXT_DUE",
    "SELECT_ONE",
    "AttemptRecord",
    "Callback",
    "Claim",
    "RecordAttempt",
    "RequestRetry",
    "Status",
    "callback_from_row",
    "enqueue",
    "moment",
    "seconds_until",
]

#: Who the log names for what the delivery worker does.
ACTOR = "psa-ledger"


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class Callback(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One outbox row, as operators see it."""

    ncentral_ticket_id: str
    external_ticket_id: str
    ticket_url: str
    status: Status
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    created_at: str
    updated_at: str


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The payload of `callback_attempted`: what one try came to and what happens next."""

    attempt: int
    api: str
    status: int | None
    error: str | None
    duration_ms: int
    retry_after: float | None = None
    #: When the next try is due; None when this try settled the callback.
    next_attempt_at: str | None = None


def enqueue(batch: Batch, create: Event, *, external_ticket_id: str, ticket_url: str) -> None:
    """Owe N-central the identity of the ticket that `create` opened; due at once."""
    batch.execute(
        _INSERT,
        (
            create.ticket_id,
            external_ticket_id,
            ticket_url,
            Status.PENDING,
            create.recorded_at,
            create.position,
            create.recorded_at,
            create.recorded_at,
        ),
    )


class Claim(msgspec.Struct, frozen=True):
    """Lease up to `limit` due rows to the worker holding `token`, until `lease_until`.

    A row is due when it is pending, its time has come and no live lease holds it.
    """

    token: str
    now: str
    lease_until: str
    limit: int

    @property
    def ticket_id(self) -> None:
        return None

    def apply(self, batch: Batch) -> None:
        batch.execute(_CLAIM, (self.token, self.lease_until, self.now, self.now, self.limit))


class RecordAttempt(msgspec.Struct, frozen=True):
    """Record one try and settle the row as it says: delivered, retried later, or dead."""

    ticket_id: str
    record: AttemptRecord
    delivered: bool

    def apply(self, batch: Batch) -> None:
        record, tid = self.record, self.ticket_id
        attempted = _append(batch, tid, Fact.CALLBACK_ATTEMPTED, record)
        error = _error_of(record)
        if self.delivered:
            ticket = batch.stream(tid).ticket
            assert ticket is not None, "a callback is only owed for a created ticket"
            before, after = delivery(ticket)
            event = _append(
                batch, tid, Fact.CALLBACK_DELIVERED, {"attempt": record.attempt}, before, after
            )
            settled: tuple[Any, ...] = (Status.DELIVERED, None, None)
        elif record.next_attempt_at is None:
            event = _append(
                batch,
                tid,
                Fact.CALLBACK_DEAD_LETTERED,
                {"attempts": record.attempt, "lastError": error},
            )
            settled = (Status.DEAD, None, error)
        else:
            event = attempted
            settled = (Status.PENDING, record.next_attempt_at, error)
        batch.execute(_SETTLE, (*settled, record.attempt, event.recorded_at, tid))


class RequestRetry(msgspec.Struct, frozen=True):
    """An operator asks for another round of tries, due now, with a fresh schedule.

    The lease is left alone: a try already in flight finishes and records itself first.
    A delivered callback stays delivered; the request is still recorded as made.
    """

    ticket_id: str
    actor: str
    previous: Callback

    def apply(self, batch: Batch) -> str:
        event = _append(
            batch,
            self.ticket_id,
            Fact.CALLBACK_RETRY_REQUESTED,
            {
                "previousStatus": self.previous.status,
                "previousAttempts": self.previous.attempts,
                "lastError": self.previous.last_error,
            },
            actor=self.actor,
        )
        batch.execute(_RETRY, (event.recorded_at, event.recorded_at, self.ticket_id))
        return event.recorded_at


def callback_from_row(row: Any) -> Callback:
    fields = dict(zip(_COLUMNS, row, strict=True))
    return Callback(**{**fields, "status": Status(fields["status"])})


def moment(offset: float = 0.0) -> str:
    """UTC ISO-8601 `offset` seconds from now, in the log's format, so text order is time order."""
    at = datetime.now(UTC) + timedelta(seconds=offset)
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def seconds_until(at: str) -> float:
    return (datetime.fromisoformat(at) - datetime.now(UTC)).total_seconds()


_COLUMNS = (
    "ncentral_ticket_id",
    "external_ticket_id",
    "ticket_url",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "updated_at",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM callbacks"

#: Rows not yet delivered, dead letters first; parameters: one status, or None for both (x2).
LISTED = (
    f"{_SELECT} WHERE status != 'delivered' AND (? IS NULL OR status = ?)"
    " ORDER BY status, next_attempt_at, ncentral_ticket_id"
)
SELECT_ONE = f"{_SELECT} WHERE ncentral_ticket_id = ?"
CLAIMED = f"{_SELECT} WHERE claim = ?"
#: The earliest moment any pending row can next be claimed (its time, or its lease's end).
NEXT_DUE = (
    "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until, ''))) FROM callbacks"
    " WHERE status = 'pending'"
)

_INSERT = (
    "INSERT OR IGNORE INTO callbacks (ncentral_ticket_id, external_ticket_id, ticket_url,"
    " status, attempts, next_attempt_at, create_position, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)"
)
_CLAIM = (
    "UPDATE callbacks SET claim = ?, lease_until = ? WHERE ncentral_ticket_id IN ("
    " SELECT ncentral_ticket_id FROM callbacks WHERE status = 'pending'"
    " AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)"
    " ORDER BY next_attempt_at LIMIT ?)"
)
_SETTLE = (
    "UPDATE callbacks SET status = ?, next_attempt_at = ?, last_error = ?, attempts = ?,"
    " updated_at = ?, claim = NULL, lease_until = NULL WHERE ncentral_ticket_id = ?"
)
_RETRY = (
    "UPDATE callbacks SET status = 'pending', attempts = 0, next_attempt_at = ?,"
    " updated_at = ? WHERE ncentral_ticket_id = ? AND status != 'delivered'"
)
_encode = msgspec.json.encode


def _append(
    batch: Batch,
    ticket_id: str,
    fact: Fact,
    payload: Any,
    before: str | None = None,
    after: str | None = None,
    *,
    actor: str = ACTOR,
) -> Event:
    return batch.append(
        ticket_id=ticket_id,
        action=fact,
        outcome=Outcome.RECORDED,
        actor=actor,
        payload=_encode(payload).decode(),
        state_before=before,
        state_after=after,
    )


def _error_of(record: AttemptRecord) -> str | None:
    if record.error is not None:
        return record.error
    return None if record.status is None or record.status < 300 else f"HTTP {record.status}"

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

from enum import StrEnum
from typing import Any

import msgspec

from service.ledger.writer import OWN_ACTOR, Batch
from service.storage import outbox as stored
from service.storage.rows import Row
from statemachine.events import Event, Fact, Outcome
from statemachine.projection import delivery

__all__ = [
    "AttemptRecord",
    "Callback",
    "Claim",
    "RecordAttempt",
    "RequestRetry",
    "Status",
    "callback_from_row",
    "enqueue",
]


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
    assert create.ticket_id is not None
    batch.execute(
        *stored.insert(
            create.ticket_id,
            external_ticket_id,
            ticket_url,
            position=create.position,
            at=create.recorded_at,
        )
    )


class Claim(msgspec.Struct, frozen=True):
    """Lease up to `limit` due rows to the worker holding `token`, until `lease_until`.

    A row is due when it is pending, its time has come and no live lease holds it.
    """

    token: str
    now: str
    lease_until: str
    limit: int
    new_ticket = False
    size = 0

    @property
    def ticket_id(self) -> None:
        return None

    def apply(self, batch: Batch) -> None:
        batch.execute(
            *stored.claim(self.token, now=self.now, lease_until=self.lease_until, limit=self.limit)
        )


class RecordAttempt(msgspec.Struct, frozen=True):
    """Record one try and settle the row as it says: delivered, retried later, or dead."""

    ticket_id: str
    record: AttemptRecord
    delivered: bool
    new_ticket = False
    size = 0

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
            status, next_at, error = Status.DELIVERED, None, None
        elif record.next_attempt_at is None:
            event = _append(
                batch,
                tid,
                Fact.CALLBACK_DEAD_LETTERED,
                {"attempts": record.attempt, "lastError": error},
            )
            status, next_at = Status.DEAD, None
        else:
            event = attempted
            status, next_at = Status.PENDING, record.next_attempt_at
        batch.execute(
            *stored.settle(
                tid,
                status=status,
                next_attempt_at=next_at,
                last_error=error,
                attempts=record.attempt,
                at=event.recorded_at,
            )
        )


class RequestRetry(msgspec.Struct, frozen=True):
    """An operator asks for another round of tries, due now, with a fresh schedule.

    The lease is left alone: a try already in flight finishes and records itself first.
    A delivered callback stays delivered; the request is still recorded as made.
    """

    ticket_id: str
    actor: str
    previous: Callback
    new_ticket = False
    size = 0

    def apply(self, batch: Batch) -> Callback:
        """The callback as the retry leaves it. Not read back after the commit: a courier
        woken by it may already be at it, and the answer would then depend on who was
        faster."""
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
        at = event.recorded_at
        batch.execute(*stored.retry(self.ticket_id, at=at))
        return msgspec.structs.replace(
            self.previous, status=Status.PENDING, attempts=0, next_attempt_at=at, updated_at=at
        )


def callback_from_row(row: Row) -> Callback:
    fields = {name: row[name] for name in stored.CALLBACK_COLUMNS}
    return Callback(**{**fields, "status": Status(fields["status"])})


_encode = msgspec.json.encode


def _append(
    batch: Batch,
    ticket_id: str,
    fact: Fact,
    payload: Any,
    before: str | None = None,
    after: str | None = None,
    *,
    actor: str = OWN_ACTOR,
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

"""Operators' hands on the outbox: what is still owed, and another round of tries.

Shared by the operator API and `psa-ledger callbacks`, so both answer alike. A retry is a
`callback_retry_requested` event written through the ledger; nothing is edited in place.
"""

from __future__ import annotations

import asyncio
import sqlite3

from service.ledger import outbox
from service.ledger.outbox import Callback, RequestRetry, Status
from service.ledger.writer import Ledger
from service.storage import outbox as stored
from service.storage.readpool import ReadPool

__all__ = ["AlreadyDelivered", "NoCallback", "find", "listed", "retry_callback", "retry_dead"]


class NoCallback(LookupError):
    """No callback is owed for this ticket (unknown, created in sync mode, a connection test)."""

    def __init__(self, ticket_id: str) -> None:
        super().__init__(f"no callback is owed for ticket {ticket_id!r}")
        self.ticket_id = ticket_id


class AlreadyDelivered(Exception):
    def __init__(self, callback: Callback) -> None:
        super().__init__(
            f"the callback for ticket {callback.ncentral_ticket_id!r} was already delivered"
        )
        self.callback = callback


def listed(db: sqlite3.Connection, status: Status | None = None) -> list[Callback]:
    """Callbacks not yet delivered (or only those in `status`), dead letters first."""
    return [outbox.callback_from_row(row) for row in stored.listed(db, status)]


def find(db: sqlite3.Connection, ticket_id: str) -> Callback:
    row = stored.one(db, ticket_id)
    if row is None:
        raise NoCallback(ticket_id)
    return outbox.callback_from_row(row)


async def retry_callback(ledger: Ledger, reads: ReadPool, ticket_id: str, actor: str) -> Callback:
    """Make a pending or dead callback due now, with its schedule started afresh; the
    callback as the retry left it."""
    callback = await reads.run(find, ticket_id)
    if callback.status is Status.DELIVERED:
        raise AlreadyDelivered(callback)
    retried: Callback = await ledger.submit(RequestRetry(ticket_id, actor, callback))
    return retried


async def retry_dead(ledger: Ledger, reads: ReadPool, actor: str) -> list[Callback]:
    """Retry every dead letter; the requests share the writer's next batch."""
    dead = await reads.run(listed, Status.DEAD)
    return list(
        await asyncio.gather(
            *(ledger.submit(RequestRetry(c.ncentral_ticket_id, actor, c)) for c in dead)
        )
    )

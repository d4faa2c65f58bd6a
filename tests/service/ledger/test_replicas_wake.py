"""Replicas on one log: couriers wake when another replica's batch makes a callback due,
and a batch waits for the append lock only so long."""

from __future__ import annotations

import asyncio

import msgspec
import psycopg
import pytest

from service.ledger.intake import AnswerPolicy, RecordRequest
from service.ledger.writer import Ledger
from service.storage import StoreUnavailable
from service.storage.backend import backend_for
from service.storage.postgres.appends import APPEND_LOCK

ASYNC = AnswerPolicy(base_url="http://psa.test", create_mode="async")


def received(action: str, ticket: str) -> RecordRequest:
    body = {"action": action, "ncentralTicketId": ticket, "title": "t", "details": "d"}
    return RecordRequest(ASYNC, msgspec.json.encode(body), actor="test", request_id=ticket)


async def test_a_commit_that_owes_a_callback_notifies_listeners_and_no_other_does(
    postgres_url: str,
) -> None:
    woken = asyncio.Event()
    listening = asyncio.create_task(backend_for(postgres_url).wakeups(woken.set))
    other_replica = Ledger(postgres_url)
    await other_replica.open()
    try:
        await asyncio.wait_for(woken.wait(), 10)  # listening: it wakes once to look around
        woken.clear()
        assert (await other_replica.submit(received("CREATE", "1"))).status == 202
        await asyncio.wait_for(woken.wait(), 5)
        woken.clear()
        assert (await other_replica.submit(received("UPDATE", "1"))).status == 200
        await asyncio.sleep(0.5)
        assert not woken.is_set(), "an UPDATE owes no callback, so it must not wake couriers"
    finally:
        listening.cancel()
        await other_replica.close()


async def test_a_batch_waits_for_the_append_lock_then_is_refused_not_stuck(
    postgres_url: str,
) -> None:
    ledger = Ledger(postgres_url, busy_timeout_ms=300)
    await ledger.open()
    try:
        with psycopg.connect(postgres_url) as stalled:  # a replica frozen inside its batch
            stalled.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
            with pytest.raises(StoreUnavailable):
                await ledger.submit(received("CREATE", "2"))
            stalled.rollback()
        assert (await ledger.submit(received("CREATE", "2"))).status == 202
    finally:
        await ledger.close()

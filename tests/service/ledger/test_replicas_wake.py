"""Replicas on one log: couriers wake when another replica's batch makes a callback due,
and a batch waits for the append lock only so long."""

from __future__ import annotations

import asyncio
import logging
from contextlib import closing

import msgspec
import psycopg
import pytest

from service.ledger.intake import AnswerPolicy, RecordRequest
from service.ledger.writer import Ledger
from service.storage import StoreUnavailable
from service.storage.appends import Prebuilt
from service.storage.backend import backend_for
from service.storage.postgres import appends
from service.storage.postgres.appends import APPEND_LOCK
from service.storage.postgres.connections import connect_sync
from service.storage.postgres.plans import plan

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


async def test_a_committed_batch_is_answered_while_the_next_waits_for_the_append_lock(
    postgres_url: str,
) -> None:
    """The writer answers a batch once the next batch's writes are on their way; when the
    next must first wait for another replica's lock, the answers may not wait with it."""
    ledger = Ledger(postgres_url)
    await ledger.open()
    try:
        with psycopg.connect(postgres_url) as holder, psycopg.connect(postgres_url) as queued:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
            first = asyncio.create_task(ledger.submit(received("CREATE", "3")))
            await _until_waiting_for_the_lock(holder, 1)
            second = asyncio.create_task(ledger.submit(received("CREATE", "4")))
            # Another replica asks for the lock after the first batch: it gets it next.
            taken = asyncio.create_task(asyncio.to_thread(_take_lock, queued))
            await _until_waiting_for_the_lock(holder, 2)
            holder.rollback()
            await taken
            assert (await asyncio.wait_for(first, 10)).status == 202
            assert not second.done(), "the second batch waits for the other replica's lock"
            queued.rollback()
            assert (await asyncio.wait_for(second, 10)).status == 202
    finally:
        await ledger.close()


def _take_lock(db: psycopg.Connection[object]) -> None:
    db.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))


async def _until_waiting_for_the_lock(db: psycopg.Connection[object], sessions: int) -> None:
    """Until `sessions` sessions wait for the append lock (`holder` is in a transaction, so
    each look is a statement of its own: read committed sees the lock table afresh)."""
    for _ in range(500):
        waiting = db.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
        if waiting is not None and waiting[0] >= sessions:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{sessions} sessions never waited for the append lock")


async def test_what_moved_is_planned_for_its_values_however_often_it_is_read(
    postgres_url: str,
) -> None:
    """A prepared "what moved" read could settle on PostgreSQL's generic plan, which walks
    the whole ticket index: each batch of each replica would then slow with the log."""
    first, second = Ledger(postgres_url), Ledger(postgres_url)
    await first.open()
    await second.open()
    try:
        for n in range(12):  # psycopg prepares a statement on its fifth execution
            for k, ledger in enumerate((first, second), start=1):
                assert (await ledger.submit(received("CREATE", f"9{n:03d}{k}"))).status == 202
        # The writer's own session: prepared statements belong to the session.
        prepared = await (
            await first._db.execute("SELECT statement FROM pg_prepared_statements")
        ).fetchall()
    finally:
        await first.close()
        await second.close()
    statements = [row["statement"] for row in prepared]
    assert statements, "psycopg prepared none of the writer's statements: the check proves nothing"
    assert not [s for s in statements if "position <= $2 AND ticket_id IS NOT NULL" in s]


def test_what_moved_is_read_by_the_key_before_the_log_is_analysed(postgres_url: str) -> None:
    """A fresh database, or a log just moved in, has no statistics until autovacuum gets to
    it, and the planner then takes a third of the log to follow any position: "what moved"
    must still read only the events after the position, by the log's key, not the whole
    log at every batch of every replica."""
    with closing(connect_sync(postgres_url, readonly=False)) as db:
        db.execute("ALTER TABLE events SET (autovacuum_enabled = false)")
        db.execute(_MANY_EVENTS, (50_000,))
        nodes = plan(db, appends._MOVED, (49_990, 59_990))
    assert not [node for node in nodes if node.startswith("Seq Scan")], nodes
    assert [node for node in nodes if node.endswith("using events_pkey")], nodes


# Events enough for a plan to tell a walk of the key from a scan of the table.
_MANY_EVENTS = (
    "INSERT INTO events SELECT n, 't' || n, 1, 'UPDATE', 'accepted', 'open', 'open',"
    " '2024-01-01T00:00:00.000000Z', NULL, 'test', '{}', NULL, 1, 'h', 'h'"
    " FROM generate_series(1, %s) AS n"
)


async def test_a_burst_begins_each_batch_in_the_round_trip_before_and_then_lets_go(
    postgres_url: str,
) -> None:
    """Work waiting while a batch commits gets its transaction (the append lock and the
    tail) in the same round trip as that COMMIT; once the burst is over the writer holds
    no lock, so another replica is never kept waiting by one with nothing to write."""
    ledger = Ledger(postgres_url, batch_limit=20)
    begun = _Counted(ledger)
    commits: list[int] = []
    ledger.on_commit(lambda batch: commits.append(len(batch.events)))
    await ledger.open()
    try:
        assert (await ledger.submit(received("CREATE", "5"))).status == 202
        answers = await asyncio.gather(
            *(ledger.submit(received("UPDATE", "5")) for _ in range(200))
        )
        with psycopg.connect(postgres_url, autocommit=True) as other:
            held = other.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            ).fetchone()
            free = other.execute("SELECT pg_try_advisory_lock(%s)", (APPEND_LOCK,)).fetchone()
    finally:
        await ledger.close()
    assert [a.status for a in answers] == [200] * 200
    assert len(commits) >= 10
    assert begun.calls <= len(commits) // 2, (begun.calls, len(commits))
    assert held == (0,) and free == (True,)


async def test_a_replica_decides_again_inside_the_lock_when_another_moved_its_ticket(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch is decided on the cache while the lock is taken; when the tail read inside
    the lock shows another replica's events, the batch is decided again on the tickets
    reloaded, before anything is written (not after the log refuses a stale write)."""
    first, second = Ledger(postgres_url), Ledger(postgres_url)
    await first.open()
    await second.open()
    try:
        assert (await first.submit(received("CREATE", "6"))).status == 202
        assert (await second.submit(received("RESOLVE", "6"))).status == 200
        with caplog.at_level(logging.INFO, logger="psa_ledger.ledger"):
            # The first replica's cache still says "open", where REOPEN is refused.
            reopened = await first.submit(received("REOPEN", "6"))
    finally:
        await first.close()
        await second.close()
    assert reopened.status == 200
    assert not [r for r in caplog.records if "refused the batch" in r.getMessage()]


class _Counted:
    """Counts the writer's separate `begin` round trips (its storage module, wrapped)."""

    def __init__(self, ledger: Ledger) -> None:
        self.calls = 0
        self._appends = ledger._appends
        ledger._appends = self

    def __getattr__(self, name: str) -> object:
        return getattr(self._appends, name)

    async def begin(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return await self._appends.begin(*args, **kwargs)


async def test_a_next_batch_begun_without_the_lock_leaves_no_transaction_open(
    postgres_url: str,
) -> None:
    """When another replica holds the append lock as a batch commits, the next batch's
    transaction begun behind the COMMIT is rolled back, not left idle: the server ends a
    session idle in a transaction, and the writer's next batch would then be refused."""
    backend = backend_for(postgres_url)
    writer = await backend.connect_writer()
    try:
        with psycopg.connect(postgres_url) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
            began = await appends.write(writer, Prebuilt([], [], [], 0), begin_next=True)
            with psycopg.connect(postgres_url, autocommit=True) as other:
                state = other.execute(
                    "SELECT state FROM pg_stat_activity WHERE pid = %s", (writer.info.backend_pid,)
                ).fetchone()
            holder.rollback()
    finally:
        await writer.close()
    assert began is None
    assert state == ("idle",)

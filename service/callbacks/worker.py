"""The delivery worker: takes due callbacks from the outbox to N-central until each is settled.

It runs beside the HTTP server, started and stopped by the app's lifespan, so an answer to
N-central never waits on a callback. Rows are leased through the ledger before a try, and a
try is cut off well before its lease ends, so no two workers (in one process, in two on
the same file, or in replicas on one PostgreSQL log, whose batches take the append lock)
ever try one callback at once. A commit that makes a row due wakes this process's courier
directly, and on PostgreSQL every replica's courier through LISTEN/NOTIFY; polling
remains the fallback. Everything a try learns goes back through
the ledger as events; after a restart the outbox simply still says what is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from service.callbacks.clients import Client, Delivery, Reply, make_client
from service.ledger import outbox
from service.ledger.outbox import AttemptRecord, Callback, Claim, RecordAttempt
from service.ledger.writer import Batch, Ledger
from service.settings import Settings
from service.storage import StoreUnavailable
from service.storage import outbox as stored
from service.storage.backend import backend_for
from service.timestamps import seconds_until, utc_now
from statemachine.events import Action, Event, Fact, Outcome

__all__ = ["Courier", "Verdict", "courier_for", "judge", "next_delay"]

log = logging.getLogger("psa_ledger.courier")


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"


def judge(reply: Reply) -> Verdict:
    """2xx delivers; what may pass (no answer, 408, 429, 5xx) is retried; the rest is final."""
    status = reply.status
    if status is not None and 200 <= status < 300:
        return Verdict.DELIVERED
    if reply.permanent:
        return Verdict.DEAD
    if status is None or status in (408, 429) or status >= 500:
        return Verdict.RETRY
    return Verdict.DEAD


def next_delay(schedule: Sequence[float], attempt: int, retry_after: float | None) -> float | None:
    """Seconds before the try after `attempt` failed, or None when the schedule is spent.

    N-central's `Retry-After` is honoured when it asks for longer, up to a day (the whole
    default schedule), so that a wild value cannot park a callback for good. A little
    jitter keeps a backlog from hitting N-central all at once.
    """
    if attempt > len(schedule):
        return None
    delay = schedule[attempt - 1]
    if retry_after is not None:
        delay = max(delay, min(retry_after, _RETRY_AFTER_CAP))
    return delay * random.uniform(1.0, 1.1)


def courier_for(settings: Settings, ledger: Ledger) -> Courier | None:
    """The worker for these settings; none when no N-central server is configured."""
    if not settings.ncentral_url:
        return None
    return Courier(
        ledger,
        settings.db,
        make_client(settings),
        settings.callback_schedule,
        timeout=settings.callback_timeout,
        busy_timeout_ms=settings.busy_timeout_ms,
    )


class Courier:
    """Claims due rows, sends them side by side (at most `concurrency`), records each try."""

    def __init__(
        self,
        ledger: Ledger,
        db: str | Path,
        client: Client,
        schedule: Sequence[float],
        *,
        timeout: float,
        concurrency: int = 16,
        poll: float = 1.0,
        busy_timeout_ms: int = 5000,
    ) -> None:
        self._ledger = ledger
        self._backend = backend_for(db, busy_timeout_ms=busy_timeout_ms)
        self._failures: tuple[type[Exception], ...] = (*self._backend.errors, StoreUnavailable)
        self._client = client
        self._schedule = tuple(schedule)
        # A REST try may authenticate and post twice; nothing legitimate takes longer.
        self._attempt_limit = 4 * timeout
        # Room to record the result (a lock wait included) before another worker may step in.
        self._lease = self._attempt_limit + 10.0 + busy_timeout_ms / 1000
        self._concurrency = concurrency
        self._poll = poll
        self._busy_timeout_ms = busy_timeout_ms
        self._woken = asyncio.Event()
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._db: Any = None
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._db = await self._backend.connect_reader()
        self._ledger.on_commit(self._notice)
        self._task = asyncio.create_task(self._run(), name="psa-ledger-courier")
        self._listener = asyncio.create_task(
            self._backend.wakeups(self._woken.set), name="psa-ledger-courier-wakeups"
        )

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let tries in flight finish and record themselves, up to `grace`.

        A try cut off here keeps its lease and is tried again once the lease ends.
        """
        self._stopping = True
        self._woken.set()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._task is not None:
            await self._task
        if self._inflight:
            _, late = await asyncio.wait(self._inflight, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._client.aclose()
        if self._db is not None:
            await self._db.close()

    def _notice(self, batch: Batch) -> None:
        if any(_owes_callback(e) for e in batch.events):
            self._woken.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._woken.clear()
            try:
                await self._claim_due()
                pause = await self._pause()
            except self._failures as exc:
                log.warning("callbacks: cannot reach the outbox now: %s", exc)
                await self._reconnect()
                pause = self._poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), pause)

    async def _claim_due(self) -> None:
        room = self._concurrency - len(self._inflight)
        if room <= 0:
            return
        now = utc_now()
        next_due = await self._next_due()
        if next_due is None or next_due > now:
            return
        token = uuid.uuid4().hex
        await self._ledger.submit(Claim(token, now, utc_now(self._lease), room))
        for callback in await self._claimed(token):
            task = asyncio.create_task(self._deliver(callback))
            self._inflight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._woken.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("callback delivery failed", exc_info=task.exception())

    async def _pause(self) -> float:
        """Until the next row falls due, but at least every poll: other processes write too."""
        next_due = await self._next_due()
        if next_due is None or len(self._inflight) >= self._concurrency:
            return self._poll
        return min(self._poll, max(0.0, seconds_until(next_due)))

    async def _deliver(self, callback: Callback) -> None:
        attempt = callback.attempts + 1
        started = time.monotonic()
        reply = await self._send(callback)
        duration_ms = round((time.monotonic() - started) * 1000)
        verdict = judge(reply)
        delay = next_delay(self._schedule, attempt, reply.retry_after)
        record = AttemptRecord(
            attempt=attempt,
            api=self._client.api,
            status=reply.status,
            error=reply.error,
            duration_ms=duration_ms,
            retry_after=reply.retry_after,
            next_attempt_at=(
                utc_now(delay) if verdict is Verdict.RETRY and delay is not None else None
            ),
        )
        log.info(
            "callback %s attempt %d: %s (%s)",
            callback.ncentral_ticket_id,
            attempt,
            verdict,
            reply.status or reply.error,
        )
        attempted = RecordAttempt(
            callback.ncentral_ticket_id, record, delivered=verdict is Verdict.DELIVERED
        )
        await self._record(attempted, until=started + self._lease - _LEASE_MARGIN)

    async def _record(self, attempted: RecordAttempt, *, until: float) -> None:
        """Record a try, again and again while its lease holds (`until`, monotonic): a
        try left unrecorded is sent again once the lease ends, so a delivered callback
        would reach N-central twice. (A COMMIT whose answer the network lost may have
        landed: the try is then recorded twice, never sent twice.)"""
        pause = _FIRST_PAUSE
        while True:
            try:
                await self._ledger.submit(attempted)
                return
            except StoreUnavailable as exc:
                if time.monotonic() + pause >= until:
                    log.error("callback %s: try not recorded (%s)", attempted.ticket_id, exc)
                    return
                log.warning("callback %s: try not recorded yet (%s)", attempted.ticket_id, exc)
            await asyncio.sleep(pause)
            pause = min(2 * pause, _LONGEST_PAUSE)

    async def _send(self, callback: Callback) -> Reply:
        """One try, whatever happens in it, as a `Reply` to record.

        An exception nobody foresaw would otherwise end the task unrecorded: the lease
        would lapse and the same try fail again, every lease, forever, with nothing in
        the log. Recorded as a permanent failure instead, it is dead-lettered with its
        reason, and an operator retries it by hand once the cause is fixed.
        """
        delivery = Delivery(
            ncentral_ticket_id=callback.ncentral_ticket_id,
            external_ticket_id=callback.external_ticket_id,
            ticket_url=callback.ticket_url,
        )
        try:
            async with asyncio.timeout(self._attempt_limit):
                return await self._client.send(delivery)
        except TimeoutError:
            return Reply(error=f"timeout: no answer within {self._attempt_limit:g} s")
        except Exception as exc:
            log.exception("callback %s: unexpected error", callback.ncentral_ticket_id)
            error = f"unexpected error: {type(exc).__name__}: {exc}"[:_LONGEST_ERROR]
            return Reply(error=error, permanent=True)

    async def _next_due(self) -> str | None:
        return await stored.next_due(self._read())

    async def _claimed(self, token: str) -> list[Callback]:
        return [outbox.callback_from_row(row) for row in await stored.claimed(self._read(), token)]

    def _read(self) -> Any:
        assert self._db is not None, "Courier.start() was not awaited"
        return self._db

    async def _reconnect(self) -> None:
        """A read connection the server dropped is opened again (tried again next round)."""
        if not self._backend.broken(self._db):
            return
        with contextlib.suppress(Exception):
            await self._db.close()
        with contextlib.suppress(*self._backend.errors):
            self._db = await self._backend.connect_reader()


_RETRY_AFTER_CAP = 24 * 3600.0
# Recording a try again: first after a tenth of a second, then twice as long each time, up
# to two seconds, and never closer than two seconds to the lease's end (so that no other
# worker has stepped in by the time the record lands).
_FIRST_PAUSE = 0.1
_LONGEST_PAUSE = 2.0
_LEASE_MARGIN = 2.0
#: An exception's text goes into the log and the outbox's `last_error`; keep it a line.
_LONGEST_ERROR = 300


def _owes_callback(event: Event) -> bool:
    """Events whose transaction may have made a row due: an accepted CREATE, a retry."""
    if event.action == Fact.CALLBACK_RETRY_REQUESTED:
        return True
    return event.action == Action.CREATE and event.outcome == Outcome.ACCEPTED

"""The write path: one writer task, group commit, the live projection.

Every change to the database is a `Command` handed to `Ledger.submit`. A single writer
task takes everything waiting, and in ONE `BEGIN IMMEDIATE` transaction runs each command
against the current projection, appends its events, rewrites the tickets it touched and
any other rows it owes, then commits (one fsync for the batch, `synchronous=FULL`). Only
then does each submitter get its result, so an answer never promises an event that a crash
could lose. One writer also means per-ticket order is arrival order, positions have no
gaps, and no two requests race on one ticket.

Each aiosqlite call is a thread hop (45-70 µs here), so a batch costs a fixed handful of
them however many commands it holds: the rows go in with `executemany`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import msgspec

from statemachine.events import GENESIS_HASH, Event, TicketRequest, chain_hash
from statemachine.projection import Stream, evolve
from service import store

__all__ = ["Batch", "Command", "Ledger", "utc_now"]

log = logging.getLogger("psa_ledger.ledger")


class Command(Protocol):
    """A unit of work for the writer; `apply` runs inside the batch's transaction."""

    @property
    def ticket_id(self) -> str | None: ...

    def apply(self, batch: Batch) -> Any: ...


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Tail(msgspec.Struct, frozen=True):
    """The last event of the log: where the next one chains on."""

    position: int = 0
    hash: str = GENESIS_HASH
    recorded_at: str = ""


class Batch:
    """One transaction's worth of changes, seen by commands as the current projection."""

    def __init__(self, streams: dict[str, Stream], tail: Tail, clock: Callable[[], str]) -> None:
        self._base = streams
        self._clock = clock
        self.tail = tail
        self.streams: dict[str, Stream] = {}
        self.events: list[Event] = []
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def stream(self, ticket_id: str) -> Stream:
        return self.streams.get(ticket_id) or self._base.get(ticket_id) or _EMPTY

    def append(
        self,
        *,
        ticket_id: str | None,
        action: str,
        outcome: str,
        actor: str,
        payload: str,
        request: TicketRequest | None = None,
        request_id: str | None = None,
        response: str | None = None,
        state_before: str | None = None,
        state_after: str | None = None,
    ) -> Event:
        """Record one event and fold it into its ticket's stream, exactly as replay will."""
        stream = self.stream(ticket_id) if ticket_id is not None else None
        position = self.tail.position + 1
        # Time never runs backwards in the log, so "state as of T" has one answer.
        recorded_at = max(self._clock(), self.tail.recorded_at)
        event = Event(
            position=position,
            ticket_id=ticket_id,
            stream_version=stream.version + 1 if stream is not None else None,
            action=action,
            outcome=outcome,
            state_before=state_before,
            state_after=state_after,
            recorded_at=recorded_at,
            request_id=request_id,
            actor=actor,
            payload=payload,
            response=response,
            prev_hash=self.tail.hash,
        )
        event = msgspec.structs.replace(event, hash=chain_hash(event, event.prev_hash))
        self.events.append(event)
        self.tail = Tail(position, event.hash, recorded_at)
        if ticket_id is not None and stream is not None:
            self.streams[ticket_id] = evolve(stream, event, request)
        return event

    def execute(self, sql: str, params: tuple[Any, ...]) -> None:
        """Another write owed in the same transaction (an outbox row, say)."""
        self.statements.append((sql, params))


class Ledger:
    """Owns the writer connection and task; `submit` is the only way to change the log."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int = 5000,
        batch_limit: int = 512,
        cache_limit: int = 100_000,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._batch_limit = batch_limit
        self._cache_limit = cache_limit
        self._clock = clock
        self._queue: asyncio.Queue[tuple[Command, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._streams: dict[str, Stream] = {}
        self._tail: Tail | None = None
        self._db: aiosqlite.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Sequence[Event]], None]] = []
        self.batches = 0

    async def open(self) -> None:
        self._db = await store.connect(self.path, busy_timeout_ms=self._busy_timeout_ms)
        self._task = asyncio.create_task(self._run(), name="psa-ledger-writer")

    async def close(self) -> None:
        """Finish every command already submitted, then stop."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    def subscribe(self, listener: Callable[[Sequence[Event]], None]) -> None:
        """Call `listener` with each batch's events once they are durable; it must not block."""
        self._listeners.append(listener)

    async def submit(self, command: Command) -> Any:
        """Run `command` in the next batch; returns once its writes are durable."""
        if self._task is None or self._task.done():
            raise store.StoreUnavailable("the ledger writer is not running")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put((command, future))
        return await future

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            work = [item]
            stopping = False
            while len(work) < self._batch_limit and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    stopping = True
                    break
                work.append(more)
            await self._write(work)
            if stopping:
                return

    async def _write(self, work: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        assert self._db is not None
        db = self._db
        try:
            await db.execute("BEGIN IMMEDIATE")
            try:
                batch = await self._begin_batch(db, (cmd.ticket_id for cmd, _ in work))
                results = [_run_one(batch, cmd) for cmd, _ in work]
                await self._flush(db, batch)
                await db.execute("COMMIT")
            except BaseException:
                await _rollback(db)
                raise
        except (sqlite3.Error, ValueError) as exc:
            log.error("write failed, batch of %d refused: %s", len(work), exc)
            self._streams.clear()
            self._tail = None
            for _, future in work:
                if not future.done():
                    future.set_exception(store.StoreUnavailable(str(exc)))
            return
        self._commit(batch)
        for (_, future), result in zip(work, results, strict=True):
            if future.done():
                continue
            if isinstance(result, _Failed):
                future.set_exception(result.error)
            else:
                future.set_result(result)

    async def _begin_batch(self, db: aiosqlite.Connection, ticket_ids: Iterable[str | None]) -> Batch:
        rows = list(await db.execute_fetchall(store.SELECT_TAIL))
        tail = Tail(*rows[0]) if rows else Tail()
        if tail != self._tail:
            # Someone else appended (a CLI tool, a failed batch): what we cached is stale.
            self._streams.clear()
            self._tail = tail
        missing = {tid for tid in ticket_ids if tid is not None and tid not in self._streams}
        if missing:
            self._streams.update(await _load_streams(db, missing))
        return Batch(self._streams, tail, self._clock)

    async def _flush(self, db: aiosqlite.Connection, batch: Batch) -> None:
        if batch.events:
            await db.executemany(store.INSERT_EVENT, [store.event_row(e) for e in batch.events])
        last_position = {e.ticket_id: e.position for e in batch.events if e.ticket_id}
        tickets = [
            store.ticket_row(tid, stream, last_position[tid])
            for tid, stream in batch.streams.items()
            if stream.ticket is not None
        ]
        if tickets:
            await db.executemany(store.UPSERT_TICKET, tickets)
        for sql, params in batch.statements:
            await db.execute(sql, params)

    def _commit(self, batch: Batch) -> None:
        if len(self._streams) > self._cache_limit:
            self._streams.clear()
        self._streams.update(batch.streams)
        self._tail = batch.tail
        self.batches += 1
        for listener in self._listeners:
            listener(batch.events)


class _Failed(msgspec.Struct):
    error: BaseException


_EMPTY = Stream()


def _run_one(batch: Batch, command: Command) -> Any:
    """A command that raises fails alone; it must not take the batch down with it."""
    try:
        return command.apply(batch)
    except Exception as exc:
        log.exception("command %r failed", command)
        return _Failed(exc)


async def _rollback(db: aiosqlite.Connection) -> None:
    try:
        await db.execute("ROLLBACK")
    except sqlite3.Error:
        pass


async def _load_streams(db: aiosqlite.Connection, ticket_ids: set[str]) -> dict[str, Stream]:
    """Streams of tickets not cached: from `tickets`, or the version alone from `events`."""
    ids = sorted(ticket_ids)
    marks = ", ".join("?" for _ in ids)
    streams = {}
    for row in await db.execute_fetchall(
        f"SELECT {', '.join(store.TICKET_COLUMNS)} FROM tickets "
        f"WHERE ncentral_ticket_id IN ({marks})",
        ids,
    ):
        streams[row[0]] = store.stream_from_row(tuple(row))
    rest = [tid for tid in ids if tid not in streams]
    if rest:
        marks = ", ".join("?" for _ in rest)
        for tid, version in await db.execute_fetchall(
            f"SELECT ticket_id, MAX(stream_version) FROM events "
            f"WHERE ticket_id IN ({marks}) GROUP BY ticket_id",
            rest,
        ):
            streams[tid] = Stream(version)
    for tid in rest:
        streams.setdefault(tid, _EMPTY)
    return streams

"""The write path: one writer task, group commit, the live projection.

Every change to the database is a `Command` handed to `Ledger.submit`. A single writer
task takes everything waiting (up to `batch_limit` commands and `batch_bytes` of
N-central's requests) and runs each command against the projection it keeps in
memory (each ticket's standing only: N-central's text, up to a megabyte a request, is
written to the `tickets` table and not kept), then writes the batch's events, the tickets
they touched and any other rows they owe in ONE transaction, and commits once (one fsync
for the batch). Only then does each submitter get its result, so an answer never
promises an event that a crash could lose. One writer also means per-ticket order is
arrival order, positions have no gaps, and no two requests race on one ticket.

The backend (`service.storage.backend`, chosen once from `PSA_LEDGER_DB`) says how a
batch begins. On SQLite nothing is read first: the positions we assign are the log's
primary key, so if another process appended meanwhile (a CLI tool), the insert fails,
nothing is committed, and the batch runs again on fresh state, read this time under
the file's write lock so that it is refused at most once. On PostgreSQL, where
several replicas append to one log, the batch begins by taking the append lock and
reading the tail; what other replicas wrote since our last batch is reloaded before
deciding. Either way a batch makes few round trips however large it is: its writes are
queued together, then COMMIT. On PostgreSQL a large batch's events go out by COPY
(`appends.COPY_FROM`).

On PostgreSQL two more round trips are saved where they can be. When work is waiting as
a batch commits (or its submitters, answered then, are likely to come back), the next
batch's transaction is begun in the same round trip as that COMMIT; if no work comes, it
is rolled back at once, so the lock is never held while the writer waits. Otherwise, while
`begin` waits for the lock and the tail, the batch is decided on the cache; that decision
stands only if the tail read inside the lock is the one this writer last wrote, and is
made again on the reloaded tickets if not (its positions would collide anyway).

A committed batch is answered once the next batch's writes are on their way to the
database, not before: answering wakes every submitter at once, and the event loop then
spends milliseconds sending their answers and reading their next requests while the
database would sit idle. Answered after, that work overlaps the next batch's insert and
fsync (on SQLite its COMMIT and fsync: the inserts are made on the event loop first, see
`storage.appends.write`). When no batch follows, or when the next must first wait for
another replica's append lock, the answers go out at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import msgspec

from service.storage import StoreUnavailable, rows
from service.storage.appends import Rest
from service.storage.backend import backend_for
from service.timestamps import utc_now
from statemachine.events import GENESIS_HASH, Event, TicketRequest, chain_hash
from statemachine.projection import Stream, evolve

__all__ = ["OWN_ACTOR", "Batch", "Command", "Ledger"]

#: The actor the log names for the facts psa-ledger records itself (deliveries, leases).
OWN_ACTOR = "psa-ledger"

log = logging.getLogger("psa_ledger.ledger")


class Command(Protocol):
    """A unit of work for the writer; `apply` runs inside the batch's transaction."""

    @property
    def ticket_id(self) -> str | None: ...

    @property
    def new_ticket(self) -> bool:
        """Whether the command starts its ticket (a CREATE): see `Ledger._prepare`."""
        ...

    @property
    def size(self) -> int:
        """Bytes of N-central's request the command carries (0 for our own): a batch holds
        at most `batch_bytes` of them, see `Ledger`."""
        ...

    def apply(self, batch: Batch) -> Any: ...


#: A submitted command and the future its submitter waits on.
_Item = tuple[Command, asyncio.Future[Any]]


# gc=False: never in a reference cycle (see `statemachine.events.TicketRequest`).
class Tail(msgspec.Struct, gc=False, frozen=True):
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
        request_digest: str | None = None,
        request_id: str | None = None,
        response: str | None = None,
        state_before: str | None = None,
        state_after: str | None = None,
    ) -> Event:
        """Record one event and fold it into its ticket's stream, exactly as replay will
        (`request_digest`: the request's digest, when the caller has it already)."""
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
        # Set in place, not by `replace`: the event is built once, then sealed by its hash.
        msgspec.structs.force_setattr(event, "hash", chain_hash(event, event.prev_hash))
        self.events.append(event)
        self.tail = Tail(position, event.hash, recorded_at)
        if ticket_id is not None and stream is not None:
            self.streams[ticket_id] = evolve(stream, event, request, request_digest)
        return event

    def ticket_rows(self) -> list[tuple[Any, ...]]:
        """The `tickets` rows of the tickets the batch touched, as they stand after it."""
        last_position = {e.ticket_id: e.position for e in self.events if e.ticket_id}
        return [
            rows.ticket_row(tid, stream, last_position[tid])
            for tid, stream in self.streams.items()
            if stream.ticket is not None
        ]

    def execute(self, statement: str, params: tuple[Any, ...]) -> None:
        """Another write owed in the same transaction (an outbox row, say), by its name in
        the backend's statements (`storage.outbox.STATEMENTS`)."""
        self.statements.append((statement, params))


class Ledger:
    """Owns the writer connection and task; `submit` is the only way to change the log."""

    def __init__(
        self,
        db: str | Path,
        *,
        busy_timeout_ms: int = 5000,
        batch_limit: int = 512,
        # A batch is decided and written on the event loop's thread (its COMMIT aside), which
        # answers nothing meanwhile: 100 CREATEs of 1 MB in one batch held it 0.6 s. Past
        # this many bytes of requests the rest wait for the next batch (one request at least).
        batch_bytes: int = 1 << 20,
        # Emptied when past it: a ticket's standing is reloaded in the batch that needs it,
        # in the round trip that loads any ticket not cached, and memory stays flat.
        cache_limit: int = 10_000,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self.backend = backend_for(db, busy_timeout_ms=busy_timeout_ms)
        self._appends = self.backend.appends
        self._batch_limit = batch_limit
        self._batch_bytes = batch_bytes
        self._cache_limit = cache_limit
        self._clock = clock
        # Bounded: under a flood, requests wait at the door instead of filling memory.
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue(maxsize=batch_limit * 16)
        # Taken from the queue, but past the last batch's `batch_bytes`: the next batch's first.
        self._carried: _Item | None = None
        self._streams: dict[str, Stream] = {}
        self._tail: Tail | None = None
        # The next batch's transaction, begun in the round trip that committed the last.
        self._began: Any = None
        self._db: Any = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Batch], None]] = []
        self._owed: Callable[[], None] | None = None

    def on_commit(self, listener: Callable[[Batch], None]) -> None:
        """Call `listener` with each batch once it is durable (metrics, waking workers).

        Listeners run on the writer's task: they must be quick and must not block.
        """
        self._listeners.append(listener)

    async def open(self) -> None:
        self._db = await self.backend.connect_writer()
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

    async def submit(self, command: Command) -> Any:
        """Run `command` in the next batch; returns once its writes are durable."""
        if self._task is None or self._task.done():
            raise StoreUnavailable("the ledger writer is not running")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((command, future))  # without `put`'s coroutine, mostly
        except asyncio.QueueFull:
            await self._queue.put((command, future))
        return await future

    async def _run(self) -> None:
        while True:
            if not self._waiting():
                self._answer()  # no batch follows to overlap with
                await self._let_go()
            item = self._carried or await self._queue.get()
            self._carried = None
            if item is None:
                await self._stop()
                return
            work, stopping = self._batch(item)
            await self._write(work)
            if stopping:
                await self._stop()
                return

    def _waiting(self) -> bool:
        """Whether work waits for the next batch: in the queue, or carried over."""
        return self._carried is not None or not self._queue.empty()

    def _batch(self, first: _Item) -> tuple[list[_Item], bool]:
        """`first` and what waits behind it, up to `batch_limit` commands and `batch_bytes`
        (a command past them is `_carried` to the next batch); whether `close` was asked."""
        work, size = [first], first[0].size
        while len(work) < self._batch_limit and not self._queue.empty():
            more = self._queue.get_nowait()
            if more is None:
                return work, True
            size += more[0].size
            if size > self._batch_bytes:
                self._carried = more
                break
            work.append(more)
        return work, False

    async def _write(self, work: list[_Item]) -> None:
        presume = True
        for _ in range(_ATTEMPTS):
            try:
                db = await self._connection()
                after = self._tail.position if self._tail else None
                began, self._began = self._began, None
                ahead = None
                if began is None:
                    began, ahead = await self._begin(db, after, work, presume=presume)
                if self._follow(began) or ahead is None:
                    decided = await self._prepare(db, work, presume=presume)
                else:
                    decided = ahead
                await self._persist(db, decided)
            except self._appends.MOVED as exc:
                # Another process appended since we cached the tail, or a ticket presumed new
                # had events after all: start again from the log, presuming nothing.
                log.info("the log refused the batch's positions (%s); retrying the batch", exc)
                await self._appends.rollback(self._db)
                self._forget()
                presume = False
                continue
            except Exception as exc:
                # Whatever went wrong, the writer lives on: this batch is refused (503).
                log.error("write failed, batch of %d refused: %r", len(work), exc)
                await self._abandon()
                self._answer()
                return _fail(work, StoreUnavailable(str(exc)))
            self._commit(decided.batch)
            self._answer()
            self._owed = functools.partial(_resolve, work, decided.results)
            return None
        self._answer()
        _fail(work, StoreUnavailable("the log kept moving under the writer"))

    def _answer(self) -> None:
        """Give the last committed batch its answers, if not given yet (see the docstring)."""
        owed, self._owed = self._owed, None
        if owed is not None:
            owed()

    async def _connection(self) -> Any:
        """The writer's connection, opened again if the server dropped the last one."""
        if self._db is None:
            self._db = await self.backend.connect_writer()
            log.info("writer connected again to %s", self.backend.display)
        return self._db

    async def _abandon(self) -> None:
        """After a failed batch: nothing of it stays, nor anything cached from before it."""
        self._forget()
        if self._db is None:
            return
        await self._appends.rollback(self._db)
        if self._appends.broken(self._db):
            db, self._db = self._db, None
            await db.close()

    async def _begin(
        self,
        db: Any,
        after: int | None,
        work: list[_Item],
        *,
        presume: bool,
    ) -> tuple[Any, _Decided | None]:
        """Begin the batch's transaction; where that takes a lock and reads the tail (a
        round trip), the batch is decided on the cache meanwhile (`_decide_ahead`). A batch
        decided again after the log refused it (nothing presumed) begins under the lock
        on SQLite too, so that it is refused at most once."""
        if not self._appends.LOCKS:
            return await self._appends.begin(db, after, locked=not presume), None
        # Answers are not held up while another replica has the append lock.
        beginning = asyncio.ensure_future(self._appends.begin(db, after, waiting=self._answer))
        for _ in range(_SENDING):
            await asyncio.sleep(0)  # to the point where the statements are sent
        ahead = self._decide_ahead(work, presume=presume)
        return await beginning, ahead

    def _decide_ahead(self, work: list[_Item], *, presume: bool) -> _Decided | None:
        """The batch decided on the cache alone, while the lock is being taken; None when a
        ticket must be read first. It stands only if the tail read inside the lock is the
        one this writer last wrote."""
        if self._tail is None or self._missing(work, presume=presume):
            return None
        return self._decide(work).run()

    def _follow(self, began: Any) -> bool:
        """Inside the append lock: forget what other writers changed since our last batch;
        whether anything was forgotten."""
        if began.tail is None:
            return False  # nothing read: the primary key catches a moved log
        tail = Tail(began.tail["position"], began.tail["hash"], began.tail["recorded_at"])
        if self._tail == tail:
            return False
        if began.moved is None or self._tail is None:
            self._streams.clear()
        else:
            for ticket_id in began.moved:
                self._streams.pop(ticket_id, None)
        self._tail = tail
        return True

    async def _prepare(self, db: Any, work: list[_Item], *, presume: bool) -> _Decided:
        """The commands, to be run against the cached projection when their events are
        written (`_Decided`), once what is missing is loaded.

        On SQLite the reads happen outside the write transaction: if the file moves on
        meanwhile, our first event's position is taken and `_persist` fails with `MOVED`.

        With `presume`, a ticket that a CREATE starts and the cache does not hold is taken
        to be new, without a read: the round trip to load it would cost most batches as
        much as their writes. The presumption is checked by the log itself, whose key on
        (ticket_id, stream_version) refuses a second first event: the batch then fails
        with `MOVED` and is decided again with every ticket loaded.
        """
        missing = self._missing(work, presume=presume)
        if self._tail is None or missing:
            tail, streams = await _load(self._appends, db, missing, with_tail=self._tail is None)
            self._tail = tail or self._tail
            self._streams.update(streams)
        return self._decide(work)

    def _missing(self, work: list[_Item], *, presume: bool) -> set[str]:
        """The tickets the commands need that the cache does not hold (see `_prepare`)."""
        return {
            cmd.ticket_id
            for cmd, _ in work
            if cmd.ticket_id is not None
            and cmd.ticket_id not in self._streams
            and not (presume and cmd.new_ticket)
        }

    def _decide(self, work: list[_Item]) -> _Decided:
        """The commands, against the cached projection and tail (run as they are written)."""
        assert self._tail is not None
        return _Decided(Batch(self._streams, self._tail, self._clock), work)

    async def _persist(self, db: Any, decided: _Decided) -> None:
        """All of the batch's writes, then COMMIT only if every one held."""
        # When work is waiting, or the submitters answered in this round trip are likely
        # to come back, the next batch's transaction is begun in this batch's round trip.
        expected = self._waiting() or self._owed is not None
        self._began = await self._appends.write(
            db, decided, queued=self._answer, begin_next=expected
        )

    def _forget(self) -> None:
        self._streams.clear()
        self._tail = None
        self._began = None

    async def _stop(self) -> None:
        self._answer()
        await self._let_go()

    async def _let_go(self) -> None:
        """Roll back a transaction begun for work that did not come: the append lock is
        not held while the writer waits."""
        if self._began is not None:
            self._began = None
            await self._appends.rollback(self._db)

    def _commit(self, batch: Batch) -> None:
        if len(self._streams) > self._cache_limit:
            self._streams.clear()
        # Only what decisions need stays: N-central's text is in the tickets table now.
        self._streams.update({tid: stream.stored() for tid, stream in batch.streams.items()})
        self._tail = batch.tail
        for listener in self._listeners:
            listener(batch)


_ATTEMPTS = 3
# Turns of the event loop a `begin` task takes to send its statements (measured: the
# overlap with deciding stops growing after two).
_SENDING = 2


class _Decided:
    """A batch's commands, run once, and the rows they owe (`appends.Writes`).

    Run ahead while the append lock is taken, or else when the backend first asks for the
    events. Not one command at a time as COPY takes the rows: PostgreSQL's COPY buffers
    the rows and inserts most of them at its end, so deciding as they go hid nothing
    (bench/results.md, round eight).
    """

    def __init__(self, batch: Batch, work: list[_Item]) -> None:
        self.batch = batch
        self.results: list[Any] = []
        self._commands = [command for command, _ in work]

    def __len__(self) -> int:
        return len(self._commands)

    def run(self) -> _Decided:
        """Every command run, unless they have been already."""
        if not self.results:
            self.results = [_run_one(self.batch, command) for command in self._commands]
        return self

    def events(self) -> Iterator[tuple[Any, ...]]:
        return map(rows.event_row, self.run().batch.events)

    def rest(self) -> Rest:
        batch = self.batch
        return Rest(batch.ticket_rows(), batch.statements, batch.tail.position)


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


def _fail(work: list[_Item], error: Exception) -> None:
    for _, future in work:
        if not future.done():
            future.set_exception(error)


def _resolve(work: list[_Item], results: list[Any]) -> None:
    for (_, future), result in zip(work, results, strict=True):
        if future.done():
            continue
        if isinstance(result, _Failed):
            future.set_exception(result.error)
        else:
            future.set_result(result)


async def _load(
    appends: Any, db: Any, ticket_ids: set[str], *, with_tail: bool
) -> tuple[Tail | None, dict[str, Stream]]:
    """The tail (when asked) and the streams of `ticket_ids`, in one round trip."""
    loaded = await appends.load(db, ticket_ids, with_tail=with_tail)
    streams = dict.fromkeys(ticket_ids, _EMPTY)
    streams |= {tid: Stream(version) for tid, version in loaded.versions.items()}
    streams |= {row["ncentral_ticket_id"]: rows.stream_from_row(row) for row in loaded.tickets}
    tail = None
    if with_tail:
        row = loaded.tail
        tail = Tail(row["position"], row["hash"], row["recorded_at"]) if row else Tail()
    return tail, streams

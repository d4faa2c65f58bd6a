"""The ledger on PostgreSQL: against raw batched inserts of the same rows, and two replicas;
then HTTP ingest (wrk, as `bench.ingest`) on PostgreSQL against SQLite in the same run.

On a throwaway PostgreSQL server (as the tests start one), three databases side by side:
one for the real `Ledger` (256 clients in flight), one for the raw baseline, one for two
`Ledger`s (two replicas' writers, 128 clients each). The run is cut into rounds that
alternate the three, so that a neighbour's burst on a shared machine lands on all of them
alike, and each figure is the median of the rounds. In a round the ledger takes UPDATEs
and every batch it commits is kept; the baseline then writes exactly those rows, batch
for batch (the same commit cadence), through the ledger's own `appends.write` (the events
by COPY, then the tickets and COMMIT in one pipeline), its rows built before its clock
starts. What the ledger costs on top of those writes is the append lock and the tail
read, deciding, and building the rows. The bench's batches are large, so both send their
events by COPY (`appends.COPY_FROM`). The same rows are also written as batched INSERTs in
one pipeline a batch (a fourth database): the issue's own words for the baseline, and
how the ledger wrote large batches until round seven (and their tickets until round
fourteen), so that figures stay comparable.
Over HTTP, the same `psa-ledger serve` on a SQLite file, then on PostgreSQL, then two
replicas on one PostgreSQL database with the connections split between them.

The UPDATEs go to 100 tickets, which the writer keeps cached; `--tickets 100000` spreads
them over more than its cache holds, so that each batch also reads its tickets back, as
an MSP with that many open tickets would have it (bench/results.md, round 12).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import msgspec
import psycopg

from bench import ingest, servers, traffic, wrk
from service.ledger.intake import AnswerPolicy, RecordRequest
from service.ledger.writer import Batch, Ledger
from service.storage import rows
from service.storage.appends import Prebuilt
from service.storage.postgres import appends
from service.storage.postgres.connections import connect_sync
from tests.support.postgres import throwaway_postgres

POLICY = AnswerPolicy(base_url="http://bench")


def main(argv: list[str] | None = None) -> dict[str, float]:
    options = _parse(argv or [])
    count = max(200, int(4000 * options.scale))
    with throwaway_postgres() as server:
        urls = [server.create_database() for _ in range(4)]
        rounds = asyncio.run(_rounds(*urls, options.rounds, count, options.tickets))
        _report(rounds, options.tickets)
        if options.http_seconds:
            _http(server.create_database(), server.create_database(), options.http_seconds)
    return {
        "raw": statistics.median(r.raw for r in rounds),
        "ledger": statistics.median(r.ledger for r in rounds),
        "two": statistics.median(r.two for r in rounds),
        "ratio": statistics.median(r.ledger / r.raw for r in rounds),
        "ratio_inserts": statistics.median(r.ledger / r.inserts for r in rounds),
    }


class Round(msgspec.Struct, frozen=True):
    """One round's requests/s: the ledger, raw writes of its batches (as the ledger writes
    them, and as INSERTs), two replicas."""

    commits: int
    events: int
    ledger: float
    raw: float
    inserts: float
    two: float


async def _rounds(
    one: str, raw_url: str, shared: str, inserts_url: str, rounds: int, count: int, tickets: int
) -> list[Round]:
    """`rounds` rounds of `count` UPDATEs over `tickets` tickets, each timed on the ledger,
    its baselines, two replicas."""
    async with AsyncExitStack() as stack:
        ledger = await stack.enter_async_context(_Replicas(one, 1, keep=True))
        two = await stack.enter_async_context(_Replicas(shared, 2, keep=False))
        raw, inserts = [
            await stack.enter_async_context(_raw(url)) for url in (raw_url, inserts_url)
        ]
        creates = [traffic.create(n) for n in range(tickets)]
        await two.send(creates, 128)
        await ledger.send(creates, 256)
        batches = ledger.taken()
        await _write(raw, batches)
        await _insert(inserts, batches)
        measured = []
        for number, updates in enumerate(_updates(rounds, count, tickets), start=1):
            ledger_rate = len(updates) / await ledger.send(updates, 256)
            batches = ledger.taken()
            events = sum(len(batch.rows) for batch in batches)
            raw_rate = events / await _write(raw, batches)
            inserts_rate = events / await _insert(inserts, batches)
            two_rate = len(updates) / await two.send(updates, 128)
            measured.append(
                Round(len(batches), len(updates), ledger_rate, raw_rate, inserts_rate, two_rate)
            )
            _print_round(number, measured[-1])
        return measured


@contextlib.asynccontextmanager
async def _raw(url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A plain psycopg connection to a database given the log's schema."""
    connect_sync(url, readonly=False).close()
    async with await psycopg.AsyncConnection.connect(url) as db:
        yield db


class _Replicas:
    """`replicas` Ledgers on one database; with `keep`, the batches the first commits are
    kept for `taken` (only then: kept batches hold every event, for the collector to walk)."""

    def __init__(self, url: str, replicas: int, *, keep: bool) -> None:
        self.writers = [Ledger(url) for _ in range(replicas)]
        self._keep = keep
        self._kept: list[Batch] = []

    async def __aenter__(self) -> _Replicas:
        for writer in self.writers:
            await writer.open()
        if self._keep:
            self.writers[0].on_commit(self._kept.append)
        return self

    async def __aexit__(self, *_: object) -> None:
        for writer in self.writers:
            await writer.close()

    async def send(self, bodies: list[bytes], in_flight: int) -> float:
        """Seconds to have every body recorded, `in_flight` clients a writer, each sending
        its share one after another as keep-alive connections do."""
        clients = in_flight * len(self.writers)

        async def client(number: int) -> None:
            writer = self.writers[number % len(self.writers)]
            for body in bodies[number::clients]:
                await writer.submit(RecordRequest(POLICY, body, actor="b", request_id="-"))

        started = time.perf_counter()
        await asyncio.gather(*(client(number) for number in range(clients)))
        return time.perf_counter() - started

    def taken(self) -> list[Prebuilt]:
        """The rows of the batches committed since the last call, built now (untimed)."""
        taken = [_rows(batch) for batch in self._kept]
        self._kept.clear()
        return taken


def _updates(rounds: int, count: int, tickets: int) -> Iterator[list[bytes]]:
    for number in range(rounds):
        yield [traffic.update(n, tickets) for n in range(number * count, (number + 1) * count)]


def _print_round(number: int, r: Round) -> None:
    print(
        f"postgres: round {number}: {r.commits} commits of {r.events / r.commits:.1f} events;"
        f" raw {r.raw:.0f}/s, INSERTs {r.inserts:.0f}/s,"
        f" Ledger {r.ledger:.0f}/s ({r.ledger / r.raw:.2f}x; {r.ledger / r.inserts:.2f}x INSERTs),"
        f" two replicas {r.two:.0f}/s ({r.two / r.ledger:.2f}x of one)",
        flush=True,
    )


def _report(rounds: list[Round], tickets: int) -> None:
    ratios = sorted(r.ledger / r.raw for r in rounds)
    to_inserts = sorted(r.ledger / r.inserts for r in rounds)
    raw = statistics.median(r.raw for r in rounds)
    inserts = statistics.median(r.inserts for r in rounds)
    ledger = statistics.median(r.ledger for r in rounds)
    two = statistics.median(r.two for r in rounds)
    print(
        f"postgres: medians of {len(rounds)} alternating rounds, UPDATEs over {tickets:,} tickets"
    )
    print(
        f"postgres: raw writes, same rows, as the ledger writes {raw:9.0f} requests/s  (baseline)"
    )
    print(f"postgres: raw batched INSERTs, same rows              {inserts:9.0f} requests/s")
    print(
        f"postgres: Ledger, one replica                         {ledger:9.0f} requests/s"
        f"  ({statistics.median(ratios):.2f}x; rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x;"
        f" {statistics.median(to_inserts):.2f}x the INSERTs, rounds"
        f" {to_inserts[0]:.2f}-{to_inserts[-1]:.2f}x)"
    )
    print(
        f"postgres: Ledger, two replicas                        {two:9.0f} requests/s"
        f"  ({statistics.median(r.two / r.ledger for r in rounds):.2f}x of one)",
        flush=True,
    )


async def _write(db: psycopg.AsyncConnection[Any], batches: list[Prebuilt]) -> float:
    """Each batch written and committed as the ledger writes it; the seconds."""
    started = time.perf_counter()
    for batch in batches:
        await appends.write(db, batch)
    return time.perf_counter() - started


async def _insert(db: psycopg.AsyncConnection[Any], batches: list[Prebuilt]) -> float:
    """Each batch's events as INSERTs, its tickets and its COMMIT in one pipeline; the seconds."""
    started = time.perf_counter()
    for batch in batches:
        async with db.pipeline(), db.cursor() as cursor:
            await cursor.executemany(_INSERT_EVENT, batch.rows)
            tickets = [appends.ticket_params(row) for row in batch.tickets]
            await cursor.executemany(appends.UPSERT_TICKET, tickets)
            await db.commit()
    return time.perf_counter() - started


#: One event a run, as the ledger wrote small batches until round fourteen.
_INSERT_EVENT = (
    f"INSERT INTO events ({', '.join(rows.EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('%s' for _ in rows.EVENT_COLUMNS)})"
)


def _rows(batch: Batch) -> Prebuilt:
    events = [rows.event_row(e) for e in batch.events]
    return Prebuilt(events, batch.ticket_rows(), [], batch.tail.position)


def _http(one: str, shared: str, seconds: int, connections: int = 32) -> None:
    """wrk's ingest mix against one server on SQLite, one on PostgreSQL, two on PostgreSQL."""
    try:
        wrk.ensure_wrk()
    except wrk.WrkMissing as exc:
        print(f"postgres: no HTTP ingest: {exc}")
        return
    with (
        tempfile.TemporaryDirectory(prefix="psa-ledger-pg-ingest-") as folder,
        servers.psa_ledger(Path(folder) / "ingest.db", create_mode="sync") as port,
    ):
        on_sqlite = _ingest([port], connections, seconds)
    with servers.psa_ledger(one, create_mode="sync") as port:
        on_postgres = _ingest([port], connections, seconds)
    with (
        servers.psa_ledger(shared, create_mode="sync") as a,
        servers.psa_ledger(shared, create_mode="sync") as b,
    ):
        on_two = _ingest([a, b], connections, seconds)
    print(f"postgres: HTTP ingest, {connections} connections, wrk {seconds} s each")
    print(f"postgres: serve on SQLite                  {on_sqlite:9.0f} requests/s  (baseline)")
    print(
        f"postgres: serve on PostgreSQL              {on_postgres:9.0f} requests/s"
        f"  ({on_postgres / on_sqlite:.2f}x)"
    )
    print(
        f"postgres: two replicas on PostgreSQL       {on_two:9.0f} requests/s"
        f"  ({on_two / on_sqlite:.2f}x)"
    )


def _ingest(ports: list[int], connections: int, seconds: int) -> float:
    """Requests/s of wrk against every port at once, the connections split between them."""
    share = connections // len(ports)
    for number, port in enumerate(ports):
        ingest.seed(port, f"{number + 1}", threads=min(2, share))
    with ThreadPoolExecutor(len(ports)) as pool:
        runs = [
            pool.submit(ingest.load, port, f"{number + 1}", share, seconds)
            for number, port in enumerate(ports)
        ]
        return sum(run.result().per_second for run in runs)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench postgres")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full run")
    parser.add_argument(
        "--rounds", type=int, default=9, help="rounds, each timing every side in turn"
    )
    parser.add_argument(
        "--http-seconds", type=int, default=5, help="length of each wrk run (0: no HTTP part)"
    )
    parser.add_argument(
        "--tickets",
        type=int,
        default=traffic.TICKETS,
        help="tickets the UPDATEs go to (100,000: more than the writer's cache holds)",
    )
    return parser.parse_known_args(argv)[0]

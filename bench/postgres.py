"""The ledger on PostgreSQL: against raw batched inserts of the same rows, and two replicas;
then HTTP ingest (wrk, as `bench.ingest`) on PostgreSQL against SQLite in the same run.

On a throwaway PostgreSQL server (as the tests start one). First the real `Ledger` takes
UPDATEs with 256 in flight, and every batch it commits is kept: its event rows and ticket
rows. The baseline then inserts exactly those rows into a fresh database, batch for batch
(the same commit cadence), with plain psycopg in pipeline mode: what the ledger costs on
top of its writes is the append lock, the tail read and deciding. Last, two `Ledger`s on
one database (two replicas' writers, 128 in flight each) against the one. Over HTTP, the
same `psa-ledger serve` on a SQLite file, then on PostgreSQL, then two replicas on one
PostgreSQL database with the connections split between them.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from bench import ingest, servers, traffic, wrk
from service.ledger.intake import AnswerPolicy, RecordRequest
from service.ledger.writer import Batch, Ledger
from service.storage import rows
from service.storage.postgres.appends import INSERT_EVENT, UPSERT_TICKET, ticket_params
from service.storage.postgres.connections import connect_sync
from tests.support.postgres import throwaway_postgres

POLICY = AnswerPolicy(base_url="http://bench")
Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def main(argv: list[str] | None = None) -> dict[str, float]:
    options = _parse(argv or [])
    count = max(200, int(6000 * options.scale))
    with throwaway_postgres() as server:
        batches: list[Rows] = []
        ledger = asyncio.run(_ledger(server.create_database(), count, 256, 1, batches))
        raw = asyncio.run(_raw(server.create_database(), batches))
        two = asyncio.run(_ledger(server.create_database(), count, 128, 2, []))
        _report(batches, raw, ledger, two)
        if options.http_seconds:
            _http(server.create_database(), server.create_database(), options.http_seconds)
    return {"raw": raw, "ledger": ledger, "two": two, "ratio": ledger / raw}


def _report(batches: list[Rows], raw: float, ledger: float, two: float) -> None:
    timed = batches[batches.index(([], [])) + 1 :]
    events = sum(len(b[0]) for b in timed)
    print(
        f"postgres: {len(timed)} commits, {events / len(timed):.1f} events a commit"
        f" (the cadence both sides below keep)"
    )
    print(f"postgres: raw batched inserts, same rows  {raw:9.0f} requests/s  (baseline)")
    print(
        f"postgres: Ledger, one replica             {ledger:9.0f} requests/s  ({ledger / raw:.2f}x)"
    )
    print(
        f"postgres: Ledger, two replicas            {two:9.0f} requests/s"
        f"  ({two / ledger:.2f}x of one)",
        flush=True,
    )


async def _ledger(url: str, count: int, in_flight: int, replicas: int, kept: list[Rows]) -> float:
    writers = [Ledger(url) for _ in range(replicas)]
    for writer in writers:
        await writer.open()
    writers[0].on_commit(lambda batch: kept.append(_rows(batch)))
    gate = asyncio.Semaphore(in_flight * replicas)

    async def send(n: int, body: bytes) -> None:
        async with gate:
            await writers[n % replicas].submit(
                RecordRequest(POLICY, body, actor="b", request_id="-")
            )

    await asyncio.gather(*(send(n, traffic.create(n)) for n in range(traffic.TICKETS)))
    kept.append(([], []))  # the timed batches start after this mark
    started = time.perf_counter()
    await asyncio.gather(*(send(n, traffic.update(n)) for n in range(count)))
    elapsed = time.perf_counter() - started
    for writer in writers:
        await writer.close()
    return count / elapsed


async def _raw(url: str, batches: list[Rows]) -> float:
    connect_sync(url, readonly=False).close()  # the schema
    db = await psycopg.AsyncConnection.connect(url)
    mark = batches.index(([], []))
    await _insert(db, batches[:mark])
    timed = batches[mark + 1 :]
    requests = sum(len(events) for events, _ in timed)
    started = time.perf_counter()
    await _insert(db, timed)
    elapsed = time.perf_counter() - started
    await db.close()
    return requests / elapsed


async def _insert(db: psycopg.AsyncConnection[Any], batches: list[Rows]) -> None:
    for events, tickets in batches:
        async with db.pipeline(), db.cursor() as cursor:
            await cursor.executemany(INSERT_EVENT, events)
            await cursor.executemany(UPSERT_TICKET, [ticket_params(row) for row in tickets])
        await db.commit()


def _rows(batch: Batch) -> Rows:
    last = {e.ticket_id: e.position for e in batch.events if e.ticket_id}
    tickets = [
        rows.ticket_row(tid, stream, last[tid])
        for tid, stream in batch.streams.items()
        if stream.ticket is not None
    ]
    return [rows.event_row(e) for e in batch.events], tickets


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
        ingest._seed(port, f"{number + 1}", threads=min(2, share))
    with ThreadPoolExecutor(len(ports)) as pool:
        runs = [
            pool.submit(ingest._load, port, f"{number + 1}", share, seconds)
            for number, port in enumerate(ports)
        ]
        return sum(run.result().per_second for run in runs)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench postgres")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full run")
    parser.add_argument(
        "--http-seconds", type=int, default=5, help="length of each wrk run (0: no HTTP part)"
    )
    return parser.parse_known_args(argv)[0]

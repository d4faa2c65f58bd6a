"""The ledger on PostgreSQL: against raw batched inserts of the same rows, and two replicas.

On a throwaway PostgreSQL server (as the tests start one). First the real `Ledger` takes
UPDATEs with 256 in flight, and every batch it commits is kept: its event rows and ticket
rows. The baseline then inserts exactly those rows into a fresh database, batch for batch
(the same commit cadence), with plain psycopg in pipeline mode: what the ledger costs on
top of its writes is the append lock, the tail read and deciding. Last, two `Ledger`s on
one database (two replicas' writers, 128 in flight each) against the one.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import psycopg

from bench import traffic
from service.ledger.intake import Intake, Received
from service.ledger.writer import Batch, Ledger
from service.storage import rows
from service.storage.postgres.appends import INSERT_EVENT, UPSERT_TICKET, ticket_params
from service.storage.postgres.connections import connect_sync
from tests.support.postgres import throwaway_postgres

INTAKE = Intake(base_url="http://bench")
Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def main(argv: list[str] | None = None) -> dict[str, float]:
    count = max(200, int(6000 * _scale(argv or [])))
    with throwaway_postgres() as server:
        batches: list[Rows] = []
        ledger = asyncio.run(_ledger(server.create_database(), count, 256, 1, batches))
        raw = asyncio.run(_raw(server.create_database(), batches))
        two = asyncio.run(_ledger(server.create_database(), count, 128, 2, []))
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
        f"  ({two / ledger:.2f}x of one)"
    )
    return {"raw": raw, "ledger": ledger, "two": two, "ratio": ledger / raw}


async def _ledger(url: str, count: int, in_flight: int, replicas: int, kept: list[Rows]) -> float:
    writers = [Ledger(url) for _ in range(replicas)]
    for writer in writers:
        await writer.open()
    writers[0].on_commit(lambda batch: kept.append(_rows(batch)))
    gate = asyncio.Semaphore(in_flight * replicas)

    async def send(n: int, body: bytes) -> None:
        async with gate:
            await writers[n % replicas].submit(Received(INTAKE, body, actor="b", request_id="-"))

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


def _scale(argv: list[str]) -> float:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full run")
    return float(parser.parse_known_args(argv)[0].scale)

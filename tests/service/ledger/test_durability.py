"""A real `psa-ledger serve` on a real port and log (a file, then PostgreSQL), killed with
SIGKILL under load.

What must hold after a restart: every request that got a 2xx is in the log, each ticket's
projected state equals the fold of its events, and no stream_version is missing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sqlite3
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from tests.support.live import NCENTRAL, Log, read

pytestmark = pytest.mark.slow
AUTH = NCENTRAL
TICKETS = [f"77{n:03d}" for n in range(20)]


async def put(client: httpx.AsyncClient, body: dict[str, str]) -> tuple[str, int | None]:
    try:
        response = await client.put("/ncentral/tickets", json=body, auth=AUTH)
    except httpx.TransportError:
        return body["details"], None
    return body["details"], response.status_code


def traffic(start: int, count: int):
    """Mostly UPDATEs, with RESOLVE and REOPEN mixed in so states keep moving."""
    actions = itertools.cycle(["UPDATE"] * 6 + ["RESOLVE", "REOPEN"])
    for n in range(start, start + count):
        yield {
            "action": next(actions),
            "ncentralTicketId": TICKETS[n % len(TICKETS)],
            "details": f"marker-{n}",
        }


async def first_burst(url: str) -> list[tuple[str, int | None]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        creates = [
            {
                "action": "CREATE",
                "ncentralTicketId": t,
                "title": f"Alert {t}",
                "details": f"marker-create-{t}",
            }
            for t in TICKETS
        ]
        answers = await asyncio.gather(*(put(client, body) for body in creates))
        answers += await asyncio.gather(*(put(client, b) for b in traffic(0, 180)))
    return answers


async def burst_until_killed(url: str, server) -> list[tuple[str, int | None]]:
    """Sends 1,000 requests 50 at a time; SIGKILLs the server once 150 have answered."""
    answered: list[tuple[str, int | None]] = []
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        gate = asyncio.Semaphore(50)

        async def one(body: dict[str, str]) -> None:
            async with gate:
                answered.append(await put(client, body))
                if sum(status is not None for _, status in answered) == 150:
                    server.kill()

        await asyncio.gather(*(one(body) for body in traffic(1000, 1000)))
    return answered


def markers_in_log(db: Path | str) -> set[str]:
    return {json.loads(row["payload"]).get("details") for row in read(db, _PAYLOADS)}


def stream_versions(db: Path | str) -> dict[str, list[int]]:
    versions: dict[str, list[int]] = defaultdict(list)
    for row in read(db, "SELECT ticket_id, stream_version FROM events WHERE ticket_id IS NOT NULL"):
        versions[row["ticket_id"]].append(row["stream_version"])
    return versions


_PAYLOADS = "SELECT payload FROM events WHERE action <> 'invalid_request'"


def test_nothing_acknowledged_is_lost_to_sigkill(log_db: Path | str, server_factory) -> None:
    db = log_db
    server = server_factory(db).start()
    first = asyncio.run(first_burst(server.url))
    assert all(status == 200 or status == 409 for _, status in first), first
    second = asyncio.run(burst_until_killed(server.url, server))
    assert not server.running, "the server should have been killed"
    acknowledged = {marker for marker, status in first + second if status and status < 300}
    assert sum(1 for _, s in second if s is None) > 0, "the kill should cut requests short"

    server_factory(db).start()  # recovers the WAL; must start cleanly
    assert acknowledged <= markers_in_log(db)

    assert Log(db).replay_problems() == []
    assert set(Log(db).states()) == set(TICKETS)
    for ticket, versions in stream_versions(db).items():
        assert sorted(versions) == list(range(1, len(versions) + 1)), ticket


def test_sigterm_under_load_answers_or_refuses_cleanly_and_loses_nothing(
    log_db: Path | str, server_factory
) -> None:
    db = log_db
    server = server_factory(db).start()
    asyncio.run(first_burst(server.url))

    async def burst_then_terminate() -> tuple[list[tuple[str, int | None]], int | None]:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            sending = [asyncio.create_task(put(client, b)) for b in traffic(5000, 300)]
            await asyncio.sleep(0.05)
            code = await asyncio.to_thread(server.stop)
            return await asyncio.gather(*sending), code

    answers, exit_code = asyncio.run(burst_then_terminate())
    # uvicorn re-raises SIGTERM once it has shut down, as systemd expects of a clean stop.
    assert exit_code in (0, -signal.SIGTERM)
    log = server.log.read_text()
    assert "Application shutdown complete" in log and "Traceback" not in log
    acknowledged = {marker for marker, status in answers if status and status < 300}
    assert acknowledged <= markers_in_log(db)


def test_events_refuse_update_and_delete(tmp_path: Path, server_factory) -> None:
    db = tmp_path / "ledger.db"
    server = server_factory(db).start()
    body = {"action": "CREATE", "ncentralTicketId": "1", "title": "t", "details": "d"}
    assert httpx.put(f"{server.url}/ncentral/tickets", json=body, auth=AUTH).status_code == 200
    with sqlite3.connect(db) as conn:
        for statement in ("UPDATE events SET outcome = 'rejected'", "DELETE FROM events"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2

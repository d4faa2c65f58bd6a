"""Two real `psa-ledger serve` replicas on one PostgreSQL log, under concurrent traffic.

Both take N-central's requests for the same tickets at once, retries land on the other
replica, and one replica is SIGKILLed in the middle of a burst. Afterwards the log must be
what one process on SQLite would have written: gapless positions, one hash chain that
`verify` accepts, a projection equal to the fold, every acknowledged request in the log,
the original answer to every retry, and one delivery per callback.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from pathlib import Path

import httpx
import pytest

from tests.support.harness import cli
from tests.support.live import NCENTRAL, Log, Service, read, wait_for
from tests.support.ncentral_fake import FakeNcentral, Reply

pytestmark = pytest.mark.slow

SHARED = [f"61{n:02d}" for n in range(12)]
RETRIED = [f"62{n:02d}" for n in range(8)]


def replica(db: str, fake: FakeNcentral, name: str, logs: Path) -> Service:
    return Service(
        db,
        log_dir=logs,
        public_url=f"https://{name}.psa.example",
        create_mode="async",
        ncentral_url=fake.url,
        ncentral_username=fake.username,
        ncentral_password=fake.password,
        callback_schedule="0.2,0.2,0.2",
        callback_timeout="1",
        log_level="warning",
    )


async def put(client: httpx.AsyncClient, url: str, body: dict[str, str]) -> httpx.Response | None:
    try:
        return await client.put(f"{url}/ncentral/tickets", json=body, auth=NCENTRAL)
    except httpx.TransportError:
        return None


def traffic(start: int, count: int) -> list[dict[str, str]]:
    actions = itertools.cycle(["UPDATE"] * 5 + ["RESOLVE", "REOPEN"])
    return [
        {"action": next(actions), "ncentralTicketId": SHARED[n % len(SHARED)], "details": f"m-{n}"}
        for n in range(start, start + count)
    ]


async def shared_burst(
    a: Service, b: Service, bodies: list[dict[str, str]], *, kill_after: int | None = None
) -> list[tuple[str, str, httpx.Response | None]]:
    """Every body to a replica picked at random, 32 at a time; SIGKILL `a` after some."""
    answered: list[tuple[str, str, httpx.Response | None]] = []
    gate = asyncio.Semaphore(32)
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(body: dict[str, str]) -> None:
            target = random.choice((a, b))
            async with gate:
                response = await put(client, target.url, body)
            answered.append((target.url, body["details"], response))
            if kill_after is not None and len(answered) == kill_after:
                a.kill()

        await asyncio.gather(*(one(body) for body in bodies))
    return answered


def test_two_replicas_share_one_log_and_survive_a_sigkill(
    postgres_url: str, tmp_path: Path
) -> None:
    random.seed(9)
    with FakeNcentral().running() as fake:
        for ticket_id in SHARED[:4]:
            fake.script(ticket_id, Reply(503))  # a retried callback, raced for by both
        a = replica(postgres_url, fake, "a", tmp_path).start()
        b = replica(postgres_url, fake, "b", tmp_path).start()
        log = Log(postgres_url)
        try:
            creates = [
                {"action": "CREATE", "ncentralTicketId": t, "title": f"T{t}", "details": "c"}
                for t in SHARED + RETRIED
            ]
            first = asyncio.run(shared_burst(a, b, creates))
            assert all(r is not None and r.status_code == 202 for _, _, r in first)
            wait_for(
                lambda: all(log.state(t) == "open" for t in SHARED + RETRIED),
                timeout=30,
                what="every callback delivered",
            )

            # A retry of an accepted request, sent to the other replica, is answered as the
            # first time: the same status and body, the first replica's ticketUrl included.
            for n, ticket_id in enumerate(RETRIED):
                original, retry = (a, b) if n % 2 == 0 else (b, a)
                body = {"action": "UPDATE", "ncentralTicketId": ticket_id, "details": "once"}
                sent = original.ticket("UPDATE", ticket_id, details="once")
                again = retry.ticket("UPDATE", ticket_id, details="once")
                assert sent.status_code == 200, body
                assert (again.status_code, again.json()) == (sent.status_code, sent.json())
                assert f"https://{'a' if original is a else 'b'}.psa" in again.json()["ticketUrl"]

            steady = asyncio.run(shared_burst(a, b, traffic(0, 300)))
            killed = asyncio.run(shared_burst(a, b, traffic(1000, 600), kill_after=200))
            assert not a.running
            # The survivor kept answering: none of its requests went unanswered or 503.
            survivor = [r for url, _, r in killed if url == b.url]
            assert survivor and all(r is not None and r.status_code < 500 for r in survivor)
        finally:
            b.stop()
            a.stop()

    answers = first + steady + killed
    acknowledged = {m for _, m, r in answers if r is not None and r.status_code < 300}
    payloads = read(postgres_url, "SELECT payload FROM events WHERE action <> 'invalid_request'")
    assert acknowledged <= {json.loads(row["payload"]).get("details") for row in payloads}

    assert log.positions() == list(range(1, len(log.positions()) + 1)), "positions have gaps"
    assert log.replay_problems() == []
    assert "OK" in cli("verify", db=postgres_url).stdout
    for ticket_id in SHARED + RETRIED:
        assert [c.status for c in fake.callbacks_for(ticket_id)].count(200) == 1, ticket_id
        assert log.actions(ticket_id).count("callback_delivered") == 1, ticket_id

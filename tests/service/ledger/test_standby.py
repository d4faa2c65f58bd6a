"""Failover to a real standby: what docs/operations.md promises with synchronous replication.

A primary and a streaming standby made with `pg_basebackup`, `synchronous_standby_names`
set, psa-ledger taking N-central's traffic on the primary. The standby's WAL receiver is
then stopped for a second, as a slow link would hold it, and the primary is SIGKILLed
(postmaster and backends: no shutdown, no checkpoint); the standby is promoted and a new
psa-ledger is started on it. Every request that was answered 2xx must be in the promoted
log, `verify` must pass there, and the log must go on.

Without the receiver's pause the test could not tell synchronous replication from
asynchronous: on one machine the standby receives each commit at once. With it, the same
test run with asynchronous replication fails (requests answered during the pause are
missing after the failover), and with synchronous replication it passes: those requests
wait for the standby, and the crash turns them into errors, not 2xx.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.harness import cli
from tests.support.live import NCENTRAL, Service, read
from tests.support.postgres import Replicated, replicated_postgres

pytestmark = pytest.mark.standby

TICKETS = [f"71{n:02d}" for n in range(8)]
SENDERS = 4
#: How long the standby receives nothing before the crash.
PAUSE = 1.0


@pytest.fixture
def replicated() -> Iterator[Replicated]:
    with replicated_postgres() as pair:
        yield pair


def test_after_a_failover_every_acknowledged_request_is_in_the_promoted_log(
    replicated: Replicated, server_factory: Callable[..., Service], tmp_path: Path
) -> None:
    database = "psa"
    replicated.primary.psql(f"CREATE DATABASE {database}")
    first = server_factory(replicated.primary.url_of(database), log_dir=tmp_path).start()
    for ticket in TICKETS:
        assert first.ticket("CREATE", ticket).status_code == 200

    acknowledged: list[str] = []
    stop = threading.Event()
    senders = [
        threading.Thread(target=_send, args=(first.url, n, stop, acknowledged))
        for n in range(SENDERS)
    ]
    for sender in senders:
        sender.start()
    _wait_until(lambda: len(acknowledged) >= 40)
    with replicated.standby_not_receiving():
        time.sleep(PAUSE)  # asynchronous replication would acknowledge what is then lost
        replicated.crash_primary()
    stop.set()
    for sender in senders:
        sender.join()
    first.kill()

    replicated.promote_standby()
    promoted = replicated.standby.url_of(database)
    logged = {row["request_id"] for row in read(promoted, "SELECT request_id FROM events")}
    assert set(acknowledged) <= logged, "a 2xx the old primary gave is missing"
    assert "OK" in cli("verify", db=promoted).stdout

    second = server_factory(promoted, log_dir=tmp_path).start()
    assert second.ticket("UPDATE", TICKETS[0], details="after failover").status_code == 200
    positions = [row["position"] for row in read(promoted, "SELECT position FROM events")]
    assert sorted(positions) == list(range(1, len(positions) + 1)), "gapless after failover"


def _send(url: str, sender: int, stop: threading.Event, acknowledged: list[str]) -> None:
    """UPDATEs, each with its own X-Request-Id, until `stop`; the ids answered 2xx."""
    with httpx.Client(base_url=url, auth=NCENTRAL, timeout=5) as client:
        for n in itertools.count():
            if stop.is_set():
                return
            request_id = f"s{sender}-{n}"
            body = {
                "action": "UPDATE",
                "ncentralTicketId": TICKETS[(sender + n) % len(TICKETS)],
                "details": request_id,
            }
            try:
                answer = client.put(
                    "/ncentral/tickets", json=body, headers={"X-Request-Id": request_id}
                )
            except httpx.TransportError:
                continue
            if answer.is_success:
                acknowledged.append(request_id)


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the traffic never got going"
        time.sleep(0.01)

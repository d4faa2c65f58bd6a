"""Callbacks across process lifetimes: a SIGKILL mid-schedule, two servers on one log (a
file, then a PostgreSQL database)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from service.timestamps import seconds_until
from tests.support.live import Log, Service, wait_for
from tests.support.ncentral_fake import FakeNcentral, Reply

pytestmark = pytest.mark.slow


def test_a_callback_pending_at_sigkill_is_delivered_once_after_restart(
    log_db: Path | str, tmp_path: Path
) -> None:
    with FakeNcentral().running() as fake:
        fake.script("4001", *[Reply(503)] * 20)
        service = _service(fake, log_db, tmp_path, schedule="1.5,1.5,1.5,1.5").start()
        log = Log(service.db)
        try:
            assert service.ticket("CREATE", "4001").status_code == 202
            wait_for(lambda: _between_tries(log, "4001"), what="a failed try, the next not due")
            service.kill()
            fake.script("4001")  # N-central is back while psa-ledger is down

            service.start()

            wait_for(lambda: log.state("4001") == "open", what="delivery after the restart")
        finally:
            service.stop()
    assert log.actions("4001").count("callback_delivered") == 1
    assert [c.status for c in fake.callbacks_for("4001")].count(200) == 1
    assert log.replay_problems() == []


def test_two_servers_on_one_log_never_send_one_callback_twice(
    log_db: Path | str, tmp_path: Path
) -> None:
    """After a first 503, every retry falls due at once in both servers: they race for it."""
    tickets = [str(5000 + n) for n in range(12)]
    with FakeNcentral().running() as fake:
        for ticket_id in tickets:
            fake.script(ticket_id, Reply(503), Reply(200, delay=0.2))
        first = _service(fake, log_db, tmp_path).start()
        second = _service(fake, log_db, tmp_path).start()
        log = Log(first.db)
        try:
            for n, ticket_id in enumerate(tickets):
                assert (first, second)[n % 2].ticket("CREATE", ticket_id).status_code == 202
            wait_for(
                lambda: all(log.state(t) == "open" for t in tickets),
                what="every delivery",
            )
        finally:
            first.stop()
            second.stop()
    assert [[c.status for c in fake.callbacks_for(t)] for t in tickets] == [[503, 200]] * 12
    assert all(log.actions(t).count("callback_attempted") == 2 for t in tickets)
    assert log.replay_problems() == []


def test_a_delivered_try_is_recorded_once_the_file_takes_writes_again(tmp_path: Path) -> None:
    """Another process holds the file's write lock while N-central answers a callback: the
    try is recorded once the lock is let go, within its lease, and never sent again."""
    with FakeNcentral().running() as fake:
        fake.script("6001", Reply(200, delay=0.5))
        service = _service(fake, tmp_path / "ledger.db", tmp_path, busy_timeout_ms="200").start()
        log = Log(service.db)
        try:
            assert service.ticket("CREATE", "6001").status_code == 202
            wait_for(lambda: fake.callbacks_for("6001"), what="the try on its way")
            with _write_lock(service.db):
                time.sleep(2.0)  # the answer comes back after 0.5 s; recording it waits 0.2 s
            wait_for(lambda: log.state("6001") == "open", what="the try recorded", timeout=8)
        finally:
            service.stop()
    assert [c.status for c in fake.callbacks_for("6001")] == [200]
    assert log.actions("6001").count("callback_delivered") == 1


@contextmanager
def _write_lock(db: Path | str) -> Iterator[None]:
    """The file's write lock, held by a connection of another process's kind."""
    with closing(sqlite3.connect(db, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")


def _between_tries(log: Log, ticket_id: str) -> bool:
    """A try has failed and been recorded, its lease released, and the next is not close."""
    row = log.callback(ticket_id)
    if row is None or row["attempts"] < 1 or row["claim"] is not None:
        return False
    return seconds_until(row["next_attempt_at"]) > 0.5


def _service(
    fake: FakeNcentral,
    db: Path | str,
    logs: Path,
    *,
    schedule: str = "0.2,0.2,0.2",
    **settings: str,
) -> Service:
    return Service(
        db,
        log_dir=logs,
        create_mode="async",
        ncentral_url=fake.url,
        ncentral_username=fake.username,
        ncentral_password=fake.password,
        callback_schedule=schedule,
        callback_timeout="1",
        **settings,
    )

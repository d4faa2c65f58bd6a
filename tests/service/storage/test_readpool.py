"""The read pool's `run_then`: the console renders a page where its read made it; and a
closed pool, which keeps nothing open however late a read comes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from service.audit.activity import head_position
from service.storage import StoreUnavailable
from service.storage.backend import backend_for
from service.storage.readpool import ReadPool
from tests.support.harness import write_log


def _read(db: Any) -> tuple[int, Any, int]:
    """The reading thread, its connection and the log's head, read through it."""
    return threading.get_ident(), db, head_position(db)


def _in_transaction(db: Any) -> bool:
    if isinstance(db, sqlite3.Connection):
        return db.in_transaction
    return bool(db.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)


def test_then_runs_in_the_reading_thread_after_the_snapshot(log_db: Path | str) -> None:
    write_log(log_db, [(timedelta(0), {"action": "CREATE", "ncentralTicketId": "1"})])
    pool = ReadPool(log_db)
    seen: list[tuple[int, bool]] = []

    def then(read: tuple[int, Any, int]) -> int:
        thread, db, head = read
        seen.append((thread, _in_transaction(db)))
        assert threading.get_ident() == thread
        return head

    async def go() -> int:
        loop_thread = threading.get_ident()
        head = await pool.run_then(then, _read)
        assert seen[0][0] != loop_thread
        return head

    try:
        assert asyncio.run(go()) == 1
    finally:
        pool.close()
    assert seen == [(seen[0][0], False)]


def test_what_then_raises_reaches_the_caller(log_db: Path | str) -> None:
    write_log(log_db, [(timedelta(0), {"action": "CREATE", "ncentralTicketId": "1"})])
    pool = ReadPool(log_db)

    def refuse(_: object) -> None:
        raise LookupError("no such ticket")

    try:
        with pytest.raises(LookupError, match="no such ticket"):
            asyncio.run(pool.run_then(refuse, _read))
    finally:
        pool.close()


def test_a_closed_pool_opens_nothing_for_a_read_that_comes_late(log_db: Path | str) -> None:
    """A thread the server let go as it stopped may still read: it is refused (503), and
    nothing is opened that nobody would close (on PostgreSQL, a pool that would go on
    reconnecting to a server long gone)."""
    write_log(log_db, [(timedelta(0), {"action": "CREATE", "ncentralTicketId": "1"})])
    pool = ReadPool(log_db)
    assert asyncio.run(pool.run(head_position)) == 1
    pool.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        pool.run_here(head_position)
    assert _connections_left(log_db) == 0


def test_a_read_under_way_as_the_pool_closes_ends_and_keeps_nothing_open(
    log_db: Path | str,
) -> None:
    write_log(log_db, [(timedelta(0), {"action": "CREATE", "ncentralTicketId": "1"})])
    pool = ReadPool(log_db)
    inside, go_on = threading.Event(), threading.Event()
    heads: list[int] = []

    def slow(db: Any) -> int:
        inside.set()
        assert go_on.wait(10)
        return head_position(db)

    reader = threading.Thread(target=lambda: heads.append(pool.run_here(slow)))
    reader.start()
    assert inside.wait(10)
    pool.close()
    go_on.set()
    reader.join(10)
    assert heads == [1]
    assert _connections_left(log_db) == 0


def _connections_left(log_db: Path | str) -> int:
    """The log's connections still open: this process's open files of a SQLite log, or
    the sessions PostgreSQL still has on the database (a closed session leaves
    `pg_stat_activity` a moment after its client hung up)."""
    if isinstance(log_db, Path):
        return sum(_is(log_db, fd) for fd in os.listdir("/proc/self/fd"))
    with closing(backend_for(log_db).connect_sync()) as db:
        deadline = time.monotonic() + 10
        while True:
            left = int(db.execute(_OTHER_SESSIONS).fetchone()["n"])
            if left == 0 or time.monotonic() > deadline:
                return left
            time.sleep(0.05)


def _is(path: Path, fd: str) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == str(path.resolve())
    except OSError:  # closed since listed
        return False


_OTHER_SESSIONS = (
    "SELECT count(*) AS n FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)

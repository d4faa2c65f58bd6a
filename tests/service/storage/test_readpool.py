"""The read pool's `run_then`: the console renders a page where its read made it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from service.audit.activity import head_position
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

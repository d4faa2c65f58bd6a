"""The text index's own thread: started after the server's first sum, stopped with it.

A thread left running once the server has stopped reads through a pool that was closed,
and opens a new one that nothing closes: on PostgreSQL that pool then tries to reconnect
to a server long gone, for as long as the process lives.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path

from service.storage.readpool import ReadPool
from service.storage.textindex import TextIndex
from service.storage.textkeeper import TextKeeper
from tests.support.harness import write_log

_THREAD = "psa-ledger-text-index"


def test_the_keeper_builds_the_index_then_stops_with_the_server(log_db: Path | str) -> None:
    write_log(log_db, [(timedelta(0), {"action": "CREATE", "ncentralTicketId": "7"})])
    texts, reads = TextIndex(), ReadPool(log_db)
    keeper = TextKeeper(texts, reads, every=0.05)
    try:
        keeper.start()
        deadline = time.monotonic() + 30
        while texts.bookmark is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert texts.bookmark == 1
        keeper.stop()
        assert not _keepers()
        assert texts.bookmark is None  # the index closed with it
    finally:
        keeper.stop()
        reads.close()


def test_a_start_due_as_the_server_stops_starts_nothing(log_db: Path | str) -> None:
    """The server starts the keeper once its first sum is done, as that task's callback.
    If the server is told to stop just as the sum ends, its shutdown can run before the
    callback: the callback must then leave the keeper stopped."""
    write_log(log_db, [(timedelta(0), {"action": "CREATE", "ncentralTicketId": "7"})])
    reads = ReadPool(log_db)
    keeper = TextKeeper(TextIndex(), reads, every=0.05)

    async def stop_before_the_callback() -> None:
        summed = asyncio.get_running_loop().create_future()
        summed.add_done_callback(keeper.start_after)
        summed.set_result(None)  # the callback is due, not yet run
        keeper.stop()
        await asyncio.sleep(0)  # now it runs

    try:
        asyncio.run(stop_before_the_callback())
        assert not _keepers()
    finally:
        keeper.stop()
        reads.close()


def _keepers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == _THREAD and t.is_alive()]

"""Another process holding the log's write lock stalls the writer, never the server.

The writer makes a batch's inserts on the event loop's own thread (`storage.appends`),
but it begins the transaction there only when the file's lock is free at once. While a
shell tool or the checkpoint process holds it, the batch waits on the connection's thread
(up to the busy timeout) and every other request is still answered.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.service.http.test_ncentral import holding_the_log
from tests.support.live import OPERATOR, Service


def test_the_server_answers_while_another_process_holds_the_log(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    # Far longer than the requests below may take: a stalled loop would fail them.
    service = Service(db, log_level="warning", busy_timeout_ms="20000").start()
    try:
        created = service.ticket("CREATE", "1001", title="Disk C: full", details="web-01")
        assert created.status_code == 200
        with ThreadPoolExecutor(1) as pool:
            with holding_the_log(db):
                update = pool.submit(service.ticket, "UPDATE", "1001", details="while held")
                # Time for it to reach the writer; a slower machine only makes the test weaker.
                time.sleep(0.5)
                # Both answered while the UPDATE's batch waits for the lock.
                health = httpx.get(f"{service.url}/healthz", timeout=5)
                page = httpx.get(
                    f"{service.url}/api/tickets/{_psa_id(created)}", auth=OPERATOR, timeout=5
                )
                assert not update.done()
            updated = update.result(timeout=30)
        assert health.status_code == 200
        assert page.status_code == 200 and page.json()["details"] == "web-01"
        assert updated.status_code == 200
        after = httpx.get(f"{service.url}/api/tickets/{_psa_id(created)}", auth=OPERATOR)
        assert after.json()["details"] == "while held"
    finally:
        service.stop()


def _psa_id(created: httpx.Response) -> str:
    return str(created.json()["externalTicketId"])

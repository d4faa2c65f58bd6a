"""`verify` in worker processes checks every row that one process checks, on both backends:
the events without a ticket (a body that was not JSON) included, and in the same
snapshot of the log as the process that started them."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import httpx
import pytest

from service.audit.verify import Finding, verify
from service.storage.backend import backend_for
from service.storage.shared import shared
from tests.support.backends import copy_to_damage, edit
from tests.support.live import NCENTRAL, Service

#: The row of the one event without a ticket (see `ticketless`).
TICKETLESS = 7
EDITED = "the row does not hash to its recorded hash (it was edited)"


@pytest.fixture(scope="module")
def ticketless(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log written by a real server: three tickets, a body that was not JSON (recorded
    with no ticket, at `TICKETLESS`), then an UPDATE of each ticket."""
    db = tmp_path_factory.mktemp("verify-parts") / "ledger.db"
    service = Service(db).start()
    try:
        for n in range(3):
            assert service.ticket("CREATE", str(100 + n)).status_code == 200
        refused = httpx.put(f"{service.url}/ncentral/tickets", content=b"{not json", auth=NCENTRAL)
        assert refused.status_code == 400
        for n in range(3):
            assert service.ticket("UPDATE", str(100 + n), details="later").status_code == 200
    finally:
        service.stop()
    return db


@pytest.fixture(params=["sqlite", "postgresql"])
def copied(request: pytest.FixtureRequest, ticketless: Path, tmp_path: Path) -> str:
    """A copy of the log on each backend, its events' refusal of UPDATE dropped."""
    return copy_to_damage(request, ticketless, tmp_path)


def test_verify_in_workers_hashes_the_events_without_a_ticket(copied: str) -> None:
    edit(copied, f"UPDATE events SET payload = 'edited' WHERE position = {TICKETLESS}")
    backend = backend_for(copied)
    with closing(backend.connect_sync()) as db, backend.snapshot(db):
        alone = verify(db)
        together = verify(db, workers=2, parallel_from=0)
    assert alone.findings == [Finding(TICKETLESS, EDITED)]
    assert together == alone
    assert together.events == TICKETLESS + 3


def test_verify_in_workers_reads_the_log_as_it_was_when_verify_began(copied: str) -> None:
    """An auditor verifies the log while the service goes on writing it, and a checkpoint
    is made meanwhile."""
    service = Service(copied).start()
    backend = backend_for(copied)
    try:
        with closing(backend.connect_sync()) as db, backend.snapshot(db):
            alone = verify(db)
            assert service.ticket("UPDATE", "100", details="meanwhile").status_code == 200
            assert service.ticket("CREATE", "200").status_code == 200
            assert "tickets" in service.cli("checkpoint").stdout
            together = verify(db, workers=2, parallel_from=0)
    finally:
        service.stop()
    assert alone.ok
    assert together == alone


def test_a_shared_snapshot_is_the_log_as_its_connection_reads_it(postgres_url: str) -> None:
    backend = backend_for(postgres_url)
    with closing(backend.connect_sync(readonly=False)) as writer:
        writer.execute("CREATE TABLE later (n integer)")
        with closing(backend.connect_sync()) as db, backend.snapshot(db):
            handle = shared(db)
            writer.execute("INSERT INTO later VALUES (1)")
            assert handle is not None
            with handle.reading() as other:
                assert other.execute("SELECT count(*) AS n FROM later").fetchone()["n"] == 0
        assert shared(writer) is None  # in autocommit: no snapshot to share

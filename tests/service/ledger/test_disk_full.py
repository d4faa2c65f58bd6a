"""A full disk: the endpoint answers 503 with Retry-After, keeps what it acknowledged, and
takes writes again once there is room. The disk is a small tmpfs, so this needs root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.storage.events import iter_after as iter_events
from service.storage.sqlite import connect_sync
from statemachine.projection import Projection
from tests.support.live import NCENTRAL

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_503_then_recovers(small_disk: Path, tmp_path: Path, server_factory):
    db = small_disk / "ledger.db"
    server = server_factory(db, log_dir=tmp_path).start()
    client = httpx.Client(base_url=server.url, auth=NCENTRAL, timeout=10)
    create = {"action": "CREATE", "ncentralTicketId": "1", "title": "Disk", "details": "d"}
    assert client.put("/ncentral/tickets", json=create).status_code == 200

    acknowledged, refusal = [], None
    for n in range(400):
        note = f"note-{n} " + "x" * 8000
        answer = client.put(
            "/ncentral/tickets",
            json={"action": "UPDATE", "ncentralTicketId": "1", "details": note},
        )
        if answer.status_code == 503:
            refusal = answer
            break
        assert answer.status_code == 200
        acknowledged.append(note)
    assert refusal is not None, "the disk never filled up"
    assert refusal.headers["content-type"].startswith("application/problem+json")
    assert int(refusal.headers["retry-after"]) > 0
    assert client.get("/healthz").status_code == 200

    logged = _replayed_details(db)
    assert set(acknowledged) <= logged

    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    again = client.put(
        "/ncentral/tickets",
        json={"action": "UPDATE", "ncentralTicketId": "1", "details": "room again"},
    )
    assert again.status_code == 200
    assert "room again" in _replayed_details(db)


def _replayed_details(db: Path) -> set[str]:
    """What the log holds, after checking that replay derives every recorded state."""
    conn = connect_sync(db)
    projection, problems, details = Projection(), [], set()
    for event in iter_events(conn):
        problems += projection.apply(event)
        if event.action == "UPDATE" and event.outcome == "accepted":
            details.add(json.loads(event.payload)["details"])
    conn.close()
    assert problems == []
    return details

"""A full disk: the endpoint answers 503 with Retry-After, keeps what it acknowledged, and
takes writes again once there is room. The disk is a small tmpfs, so this needs root.

On SQLite the log's file lives on the tmpfs. On PostgreSQL the honest equivalent is the
database's tablespace on it: the server's WAL stays on its own disk (a full WAL disk
stops the whole server, a PANIC, which is the standby's case in docs/operations.md, not
a database filling up), and the tables, which grow with the log, meet the full disk:
"could not extend file", disk_full. The tmpfs is made just big enough for the empty
database and its schema, then filled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

from service.storage.backend import backend_for
from service.storage.events import iter_after as iter_events
from statemachine.projection import Projection
from tests.support.live import NCENTRAL, Service
from tests.support.postgres import Postgres

pytestmark = pytest.mark.slow

#: How SQLite, then PostgreSQL, say the disk is full.
FULL = ("database or disk is full", "No space left on device")
CREATE = {"action": "CREATE", "ncentralTicketId": "1", "title": "Disk", "details": "d"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with _tmpfs(tmp_path / "disk", "512k") as mount:
        yield mount


def test_a_full_disk_is_503_then_recovers(small_disk: Path, tmp_path: Path, server_factory):
    db = small_disk / "ledger.db"
    server = server_factory(db, log_dir=tmp_path).start()
    _fill_refuse_and_recover(server, small_disk, "x" * 8000, room="8m")


def test_a_full_tablespace_on_postgresql_is_503_then_recovers(
    postgres: Postgres, tmp_path: Path, server_factory: Callable[..., Service]
) -> None:
    # Beside the server's own files: its user cannot reach into the tests' temporary folders.
    with _tmpfs(postgres.socket_dir / f"disk-{tmp_path.name}", "64m") as mount:
        folder = mount / "space"
        folder.mkdir()
        space = postgres.create_tablespace(folder)
        url = postgres.create_database(tablespace=space)
        server = server_factory(url, log_dir=tmp_path).start()
        used_kb = _used_kb(mount)
        subprocess.run(["mount", "-o", f"remount,size={used_kb + 1024}k", str(mount)], check=True)
        try:
            # Text that does not compress, or TOAST would pack the notes into nothing.
            _fill_refuse_and_recover(server, mount, os.urandom(6000).hex(), room="64m")
        finally:
            server.stop()
            name = url.rsplit("/", 1)[1]
            postgres.psql(f'DROP DATABASE "{name}" WITH (FORCE)')
            postgres.psql(f'DROP TABLESPACE "{space}"')


def _fill_refuse_and_recover(server: Service, disk: Path, filler: str, *, room: str) -> None:
    client = httpx.Client(base_url=server.url, auth=NCENTRAL, timeout=30)
    assert client.put("/ncentral/tickets", json=CREATE).status_code == 200

    acknowledged, refusal = [], None
    for n in range(2000):
        note = f"note-{n} {filler}"
        answer = client.put(
            "/ncentral/tickets",
            json={"action": "UPDATE", "ncentralTicketId": "1", "details": note},
        )
        if answer.status_code == 503:
            refusal = answer
            break
        assert answer.status_code == 200, answer.text
        acknowledged.append(note)
    assert refusal is not None, "the disk never filled up"
    assert refusal.headers["content-type"].startswith("application/problem+json")
    assert int(refusal.headers["retry-after"]) > 0
    assert any(full in refusal.json()["detail"] for full in FULL), "refused for a full disk"
    assert client.get("/healthz").status_code == 200

    # Room first, then read: a new PostgreSQL session may have to write its relcache init
    # file into the database's folder, which a full disk refuses ("could not write init
    # file"). Nothing is written in between, so the log read is the one the refusal left.
    subprocess.run(["mount", "-o", f"remount,size={room}", str(disk)], check=True)
    logged = _replayed_details(server.db)
    assert set(acknowledged) <= logged

    again = client.put(
        "/ncentral/tickets",
        json={"action": "UPDATE", "ncentralTicketId": "1", "details": "room again"},
    )
    assert again.status_code == 200
    assert "room again" in _replayed_details(server.db)


@contextmanager
def _tmpfs(mount: Path, size: str) -> Iterator[Path]:
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _used_kb(mount: Path) -> int:
    stats = os.statvfs(mount)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize // 1024


def _replayed_details(db: Path | str) -> set[str]:
    """What the log holds, after checking that replay derives every recorded state."""
    backend = backend_for(db)
    projection, problems, details = Projection(), [], set()
    with closing(backend.connect_sync()) as conn, backend.snapshot(conn):
        for event in iter_events(conn):
            problems += projection.apply(event)
            if event.action == "UPDATE" and event.outcome == "accepted":
                details.add(json.loads(event.payload)["details"])
    assert problems == []
    return details

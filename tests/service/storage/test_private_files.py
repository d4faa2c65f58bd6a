"""The files that hold tickets and passwords are the owner's alone, whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx

from tests.support.harness import clean_environment
from tests.support.live import free_port, wait_for

CREATE = {"action": "CREATE", "ncentralTicketId": "61", "title": "t", "details": "d"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def serve(db: Path, *, umask: int = 0o022) -> tuple[subprocess.Popen[str], str]:
    """`psa-ledger serve` with no password configured, so that it generates both."""
    port = free_port()
    env = clean_environment()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--db", str(db), "--port", str(port)],
        env=env,
        umask=umask,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"psa-ledger exited: {process.stderr.read()}")  # type: ignore[union-attr]
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout=15, what="psa-ledger")
    return process, url


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    process.wait(timeout=15)
    return process.stderr.read()  # type: ignore[union-attr]


def test_with_umask_000_the_log_its_wal_and_the_passwords_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "srv" / "psa" / "log.db"
    process, url = serve(db, umask=0o000)
    try:
        credentials = tomllib.loads(db.with_name("log.credentials.toml").read_text())
        ncentral = (credentials["ncentral"]["username"], credentials["ncentral"]["password"])
        created = httpx.put(f"{url}/ncentral/tickets", json=CREATE, auth=ncentral)
        assert created.status_code == 200
        # While the server runs, SQLite keeps its write-ahead log and shared memory beside it.
        found = {path.name: oct(mode(path)) for path in db.parent.iterdir()}
        assert found == {
            "log.db": "0o600",
            "log.db-wal": "0o600",
            "log.db-shm": "0o600",
            "log.credentials.toml": "0o600",
        }
        assert oct(mode(tmp_path / "srv")) == oct(mode(tmp_path / "srv" / "psa")) == "0o700"
    finally:
        stop(process)


def test_the_folder_it_did_not_create_is_left_as_it_was(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    process, _ = serve(shared / "log.db", umask=0o000)
    stop(process)
    assert mode(shared) == 0o755
    assert mode(shared / "log.db") == 0o600


def test_passwords_are_never_written_through_a_file_planted_beside_them(tmp_path: Path) -> None:
    """A symlink where the temporary file used to go: the secrets must not follow it."""
    (tmp_path / "var").mkdir()
    elsewhere = tmp_path / "readable-by-all.txt"
    elsewhere.write_text("")
    os.chmod(elsewhere, 0o644)
    (tmp_path / "var" / "log.credentials.tmp").symlink_to(elsewhere)
    process, _ = serve(tmp_path / "var" / "log.db")
    stop(process)
    assert elsewhere.read_text() == ""
    assert mode(tmp_path / "var" / "log.credentials.toml") == 0o600
    assert [p.name for p in (tmp_path / "var").iterdir() if ".tmp" in p.name] == [
        "log.credentials.tmp"
    ], "no temporary file is left behind"


def test_a_credentials_file_others_may_read_stops_serve(tmp_path: Path) -> None:
    process, _ = serve(tmp_path / "log.db")
    stop(process)
    secrets_file = tmp_path / "log.credentials.toml"
    os.chmod(secrets_file, 0o644)
    refused = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--db", str(tmp_path / "log.db")],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode != 0
    assert refused.stderr == (
        f"Error: {secrets_file} holds passwords but others may read it:"
        f" run `chmod 600 {secrets_file}` (or delete it to generate new passwords)\n"
    )


def test_a_log_others_may_read_is_said_loudly_at_start(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    process, _ = serve(db)
    stop(process)
    os.chmod(db, 0o644)
    process, _ = serve(db)
    output = stop(process)
    assert f"the event log {db} is readable by others (mode 0644)" in output
    assert mode(db) == 0o644, "a mode its owner chose is theirs to change"

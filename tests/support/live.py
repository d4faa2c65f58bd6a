"""A real `psa-ledger serve` process on a free port with a real log (a SQLite file or a
PostgreSQL database), ways to wait on it, and the log read as an auditor would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import httpx

from service.storage import events
from service.storage.backend import backend_for, is_url
from statemachine.events import GENESIS_HASH, chain_hash
from statemachine.projection import Projection

NCENTRAL = ("ncentral", "inbound-secret-for-tests")
OPERATOR = ("operator", "operator-secret-for-tests")
T = TypeVar("T")


def wait_for(condition: Callable[[], T], *, timeout: float = 30.0, what: str = "condition") -> T:
    """Poll until `condition()` is truthy; its value is returned. No fixed sleeps.

    The bound only says when to give up: a shared, loaded machine (CI's two cores) has
    taken more than 10 s to deliver a callback that takes well under one when idle.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One psa-ledger process; `start` again after `kill` to restart it on the same file."""

    def __init__(self, db: Path | str, *, log_dir: Path | None = None, **settings: str) -> None:
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if isinstance(db, Path):
            self.log = (log_dir or db.parent) / f"{db.stem}.{self.port}.log"
        else:
            self.log = (log_dir or Path(tempfile.gettempdir())) / f"psa-ledger.{self.port}.log"
        self.env = {
            **os.environ,
            "PSA_LEDGER_DB": str(db),
            "PSA_LEDGER_PORT": str(self.port),
            "PSA_LEDGER_USERNAME": NCENTRAL[0],
            "PSA_LEDGER_PASSWORD": NCENTRAL[1],
            "PSA_LEDGER_OPERATOR_USERNAME": OPERATOR[0],
            "PSA_LEDGER_OPERATOR_PASSWORD": OPERATOR[1],
            **{f"PSA_LEDGER_{k.upper()}": v for k, v in settings.items()},
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "service", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._healthy, timeout=15, what=f"psa-ledger on {self.url} (see {self.log})")
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, nothing but what was committed survives."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()

    def stop(self) -> int | None:
        """SIGTERM, as systemd would; returns the exit code (None if it was not running)."""
        if self._process is None or self._process.poll() is not None:
            return None
        self._process.terminate()
        return self._process.wait(timeout=15)

    def peak_rss_kb(self) -> int:
        """The process's peak resident memory so far (the kernel's VmHWM), in kB."""
        assert self._process is not None
        status = Path(f"/proc/{self._process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmHWM in /proc/{self._process.pid}/status")

    def ticket(self, action: str, ticket_id: str, **fields: Any) -> httpx.Response:
        """What N-central sends to the Ticketing Endpoint."""
        body = {"action": action, "ncentralTicketId": ticket_id, **fields}
        if action == "CREATE":
            body = {"title": f"ticket {ticket_id}", "details": "Device: web-01", **body}
        return httpx.put(f"{self.url}/ncentral/tickets", json=body, auth=NCENTRAL)

    def as_operator(self, method: str, path: str) -> httpx.Response:
        """As a script would: a POST carries a JSON body, which no other site's form can send."""
        body = {} if method == "POST" else None
        return httpx.request(method, f"{self.url}{path}", auth=OPERATOR, json=body)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "service", *args, "--db", str(self.db)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def _healthy(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"psa-ledger exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False


def read(db: Path | str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """The rows of `sql` (`?` placeholders) as dicts, read-only, on either backend."""
    with closing(backend_for(db).connect_sync()) as conn:
        rows = conn.execute(sql.replace("?", "%s") if is_url(db) else sql, params)
        return [dict(row) for row in rows]


class Log:
    """The event log and its projections, read the way an auditor would: read-only SQL."""

    def __init__(self, db: Path | str) -> None:
        self.db = db

    def events(self, ticket_id: str) -> list[dict[str, Any]]:
        return read(
            self.db,
            "SELECT action, outcome, state_before, state_after, actor, payload"
            " FROM events WHERE ticket_id = ? ORDER BY position",
            (ticket_id,),
        )

    def actions(self, ticket_id: str) -> list[str]:
        return [row["action"] for row in self.events(ticket_id)]

    def state(self, ticket_id: str) -> str | None:
        rows = read(self.db, "SELECT state FROM tickets WHERE ncentral_ticket_id = ?", (ticket_id,))
        return rows[0]["state"] if rows else None

    def states(self) -> dict[str, str]:
        """Every ticket's state in the tickets table."""
        rows = read(self.db, "SELECT ncentral_ticket_id, state FROM tickets")
        return {row["ncentral_ticket_id"]: row["state"] for row in rows}

    def callback(self, ticket_id: str) -> dict[str, Any] | None:
        rows = read(self.db, "SELECT * FROM callbacks WHERE ncentral_ticket_id = ?", (ticket_id,))
        return rows[0] if rows else None

    def positions(self) -> list[int]:
        return [row["position"] for row in read(self.db, "SELECT position FROM events ORDER BY 1")]

    def replay_problems(self) -> list[str]:
        """Replaying the whole log must keep the hash chain, derive every recorded state,
        and give the tickets table."""
        projection, prev, problems = Projection(), GENESIS_HASH, []
        with closing(backend_for(self.db).connect_sync()) as db:
            for event in events.iter_after(db):
                problems += projection.apply(event)
                if event.prev_hash != prev or chain_hash(event, prev) != event.hash:
                    problems.append(f"hash chain broken at position {event.position}")
                prev = event.hash
        recorded = self.states()
        derived = {tid: t.state.value for tid, t in projection.tickets().items()}
        if derived != recorded:
            problems.append(f"tickets table {recorded} but replay derives {derived}")
        return problems

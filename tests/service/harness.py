"""Real processes for the service tests: a `psa-ledger serve` on a free port, the CLI.

Also a log written through the real write path (the Ledger and N-central's command) with
a clock the test sets, so that audit answers that depend on time are known in advance.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec

from service.ledger import Ledger
from service.ncentral import Intake, Received

PSA_LEDGER = str(Path(sys.executable).with_name("psa-ledger"))
NCENTRAL = ("ncentral", "nc-secret")
OPERATOR = ("operator", "op-secret")


class Server:
    """A `psa-ledger serve` subprocess on a real DB file; stopped by `stop`."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # A file, not a pipe: nobody drains a pipe, and a full one would stall the server.
        self._log = db.with_suffix(".server.log")
        self._log_file = self._log.open("wb")
        self._process = subprocess.Popen(
            [
                PSA_LEDGER, "serve", "--db", str(db), "--port", str(self.port),
                "--password", NCENTRAL[1], "--operator-password", OPERATOR[1],
                "--log-level", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
        )  # fmt: skip
        self.ncentral = httpx.Client(base_url=self.url, auth=NCENTRAL, timeout=10)
        self.operator = httpx.Client(base_url=self.url, auth=OPERATOR, timeout=30)
        self._wait_until_up()

    def send(self, **body: Any) -> httpx.Response:
        return self.ncentral.put("/ncentral/tickets", json=body)

    def stop(self) -> None:
        self.ncentral.close()
        self.operator.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log_file.close()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"server exited: {self._log.read_text()}")
            try:
                if self.operator.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not come up within 20 s")


def cli(*args: str, db: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `psa-ledger ARGS --db DB` as a user would."""
    command = [PSA_LEDGER, *args] + (["--db", str(db)] if db is not None else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSA_LEDGER_")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"{command} exited {done.returncode}: {done.stderr}{done.stdout}")
    return done


class Clock:
    """The writer's clock, moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> str:
        return self.now.isoformat(timespec="microseconds").replace("+00:00", "Z")


def write_log(path: Path, steps: Iterable[tuple[timedelta, dict[str, Any] | bytes]]) -> None:
    """Append each request through the real Ledger, the clock at `start + offset`."""
    asyncio.run(_write_log(path, steps))


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def _write_log(path: Path, steps: Iterable[tuple[timedelta, dict[str, Any] | bytes]]) -> None:
    clock = Clock(days_ago(30))
    start = clock.now
    ledger = Ledger(path, clock=clock)
    intake = Intake(base_url="http://psa.example")
    await ledger.open()
    try:
        for number, (offset, body) in enumerate(steps):
            clock.now = start + offset
            raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
            await ledger.submit(Received(intake, raw, actor="ncentral", request_id=f"r{number}"))
    finally:
        await ledger.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

"""Real processes for the service tests: a `psa-ledger serve` on a free port, the CLI.

Also a log written through the real write path (the Ledger and N-central's command) with
a clock the test sets, so that audit answers that depend on time are known in advance.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec

from service.ledger.intake import AnswerPolicy, RecordRequest
from service.ledger.writer import Ledger
from tests.support.live import NCENTRAL, OPERATOR, Service

PSA_LEDGER = str(Path(sys.executable).with_name("psa-ledger"))


class Server(Service):
    """A server already up, with an HTTP client for each credential; stopped by `stop`."""

    def __init__(self, db: Path | str, log_dir: Path | None = None) -> None:
        super().__init__(db, log_dir=log_dir, log_level="warning")
        self.start()
        self.ncentral = httpx.Client(base_url=self.url, auth=NCENTRAL, timeout=10)
        self.operator = httpx.Client(base_url=self.url, auth=OPERATOR, timeout=30)

    def send(self, **body: Any) -> httpx.Response:
        return self.ncentral.put("/ncentral/tickets", json=body)

    def stop(self) -> int | None:
        self.ncentral.close()
        self.operator.close()
        return super().stop()


def clean_environment() -> dict[str, str]:
    """This process's environment without any PSA_LEDGER_ setting, for a child that must
    read only the settings a test gives it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PSA_LEDGER_")}


def cli(
    *args: str, db: Path | str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `psa-ledger ARGS --db DB` as a user would."""
    command = [PSA_LEDGER, *args] + (["--db", str(db)] if db is not None else [])
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=clean_environment()
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{command} exited {done.returncode}: {done.stderr}{done.stdout}")
    return done


class Clock:
    """The writer's clock, moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> str:
        return self.now.isoformat(timespec="microseconds").replace("+00:00", "Z")


def write_log(path: Path | str, steps: Iterable[tuple[timedelta, dict[str, Any] | bytes]]) -> None:
    """Append each request through the real Ledger, the clock at `start + offset`."""
    asyncio.run(_write_log(path, steps))


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def _write_log(
    path: Path | str, steps: Iterable[tuple[timedelta, dict[str, Any] | bytes]]
) -> None:
    clock = Clock(days_ago(30))
    start = clock.now
    ledger = Ledger(path, clock=clock)
    policy = AnswerPolicy(base_url="http://psa.example")
    await ledger.open()
    try:
        for number, (offset, body) in enumerate(steps):
            clock.now = start + offset
            raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
            await ledger.submit(
                RecordRequest(policy, raw, actor="ncentral", request_id=f"r{number}")
            )
    finally:
        await ledger.close()

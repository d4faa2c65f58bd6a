"""PostgreSQL out of reach: at start, one clear line and a non-zero exit; while serving,
503 with Retry-After, nothing acknowledged lost, and service again once it is back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.harness import cli
from tests.support.live import NCENTRAL, OPERATOR, Service, free_port, read, wait_for
from tests.support.postgres import Postgres


def test_unreachable_at_start_is_one_line_and_a_failed_exit() -> None:
    url = f"postgresql://psa@127.0.0.1:{free_port()}/psa"
    env = {
        **os.environ,
        "PSA_LEDGER_DB": url,
        "PSA_LEDGER_PORT": str(free_port()),
        "PSA_LEDGER_PASSWORD": NCENTRAL[1],
        "PSA_LEDGER_OPERATOR_PASSWORD": OPERATOR[1],
    }
    done = subprocess.run(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"Error: cannot open the event log at {url}:")
    assert "Traceback" not in done.stderr


def test_lost_while_serving_is_503_then_service_again(
    postgres: Postgres, postgres_url: str, tmp_path: Path
) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    service = Service(postgres_url, log_dir=tmp_path).start()
    try:
        assert service.ticket("CREATE", "1").status_code == 200
        postgres.psql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        postgres.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )

        lost = service.ticket("UPDATE", "1", details="while lost")
        assert lost.status_code == 503, lost.text
        assert lost.headers["Retry-After"]
        assert lost.headers["content-type"].startswith("application/problem+json")

        postgres.psql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        back = wait_for(
            lambda: _accepted(service.ticket("UPDATE", "1", details="back")),
            what="the writer to reconnect",
        )
        assert back.status_code == 200
        events = httpx.get(f"{service.url}/api/events", auth=OPERATOR, timeout=30)
        assert events.status_code == 200
    finally:
        service.stop()
    details = [json.loads(row["payload"]).get("details") for row in read(postgres_url, _PAYLOADS)]
    assert "back" in details and "while lost" not in details
    assert "OK" in cli("verify", db=postgres_url).stdout


def _accepted(response: httpx.Response) -> httpx.Response | None:
    return response if response.status_code == 200 else None


_PAYLOADS = "SELECT payload FROM events ORDER BY position"

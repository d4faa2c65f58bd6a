"""psa-ledger's own logs: JSON lines a machine can read, one access line per request, and
never a body or a credential in them. Read from a real server's stderr and stdout."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.storage.backend import is_url
from tests.support.harness import clean_environment
from tests.support.live import NCENTRAL, OPERATOR, Service, read

pytestmark = pytest.mark.slow

BODY_MARKER = "body-marker-5f0c2a"
WRONG_PASSWORD = "wrong-password-9d41e7"
QUERY_MARKER = "query-marker-77ab10"
URL_PASSWORD = "url-password-3c9e51"
ACCESS_FIELDS = {"time", "level", "request_id", "route", "status", "duration_ms", "method"}


def test_json_logs_have_one_line_per_request_and_nothing_secret(
    server_factory: Any, log_db: Path | str, tmp_path: Path
) -> None:
    """On PostgreSQL the URL carries a password (the test server trusts any), never logged."""
    db = _with_password(log_db)
    service = server_factory(db, log_dir=tmp_path, log_format="json", log_level="info").start()
    sent = [
        httpx.put(
            f"{service.url}/ncentral/tickets",
            auth=NCENTRAL,
            headers={"X-Request-Id": "req-log-1"},
            json={
                "action": "CREATE",
                "ncentralTicketId": "7001",
                "title": f"title {BODY_MARKER}",
                "details": f"details {BODY_MARKER}",
            },
        ),
        httpx.put(
            f"{service.url}/ncentral/tickets", auth=NCENTRAL, content=f"not json {BODY_MARKER}"
        ),
        httpx.put(
            f"{service.url}/ncentral/tickets",
            auth=(NCENTRAL[0], WRONG_PASSWORD),
            content=BODY_MARKER,
        ),
        httpx.get(f"{service.url}/api/events?ticket={QUERY_MARKER}", auth=OPERATOR),
        httpx.get(f"{service.url}/tickets/PSA-1", auth=OPERATOR),
        httpx.get(f"{service.url}/no/such/route"),
    ]
    assert [r.status_code for r in sent] == [200, 400, 401, 200, 200, 404]
    service.stop()

    text = service.log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "psa_ledger.access"]
    assert len(access) == len(sent) + 1, "one line per request (and the start-up health check)"
    assert all(set(line) >= ACCESS_FIELDS for line in access)
    requests = [line for line in access if line["route"] != "/healthz"]
    assert [line["status"] for line in requests] == [r.status_code for r in sent]
    assert requests[0]["request_id"] == "req-log-1" == _request_id_recorded_for(service, "7001")
    assert requests[0]["route"] == "/ncentral/tickets"
    assert requests[0]["user"] == NCENTRAL[0]
    assert requests[4]["route"] == "/tickets/{external_ticket_id}"
    assert all(isinstance(line["duration_ms"], float) for line in access)
    assert {r.headers["x-request-id"] for r in sent[1:]}.isdisjoint({"", None})
    assert not any(line["logger"].startswith("uvicorn.access") for line in lines)
    for secret in (
        BODY_MARKER,
        QUERY_MARKER,
        WRONG_PASSWORD,
        NCENTRAL[1],
        OPERATOR[1],
        _basic(*NCENTRAL),
        _basic(*OPERATOR),
        URL_PASSWORD,
    ):
        assert secret not in text


def test_text_logs_are_for_people_and_the_level_is_ours(
    server_factory: Any, tmp_path: Path
) -> None:
    service = server_factory(tmp_path / "ledger.db", log_format="text", log_level="info").start()
    httpx.get(f"{service.url}/api/events", auth=OPERATOR)
    service.stop()
    quiet = server_factory(tmp_path / "quiet.db", log_format="json", log_level="warning").start()
    httpx.get(f"{quiet.url}/api/events", auth=OPERATOR)
    quiet.stop()

    line = next(x for x in service.log.read_text().splitlines() if "/api/events" in x)
    assert " info psa_ledger.access GET /api/events 200 " in line
    assert "route=/api/events" in line and "duration_ms=" in line
    assert "/api/events" not in quiet.log.read_text()


def test_shell_tools_log_the_same_way(
    log_db: Path | str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = log_db
    env = clean_environment()
    Service(db, log_dir=tmp_path).start().stop()
    no_log = (
        request.getfixturevalue("postgres").create_database()
        if is_url(db)
        else str(tmp_path / "missing.db")
    )

    listed = _cli(["events", "--db", str(db), "--log-format", "json", "--format", "json"], env)
    from_env = _cli(["callbacks", "list", "--db", str(db)], env | _json_env())
    failed = _cli(["verify", "--db", no_log, "--log-format", "json"], env)

    for done, command, status in ((listed, "events", 0), (from_env, "callbacks", 0)):
        [line] = [json.loads(x) for x in done.stderr.splitlines()]
        assert (line["command"], line["status"], line["level"]) == (command, status, "info")
        assert {"time", "duration_ms"} <= set(line)
    assert json.loads(listed.stdout) == [], "data stays on stdout, logs on stderr"
    [logged] = [json.loads(x) for x in failed.stderr.splitlines() if x.startswith("{")]
    assert (logged["command"], logged["level"]) == ("verify", "warning")
    assert logged["status"] == failed.returncode != 0
    assert "no event log" in logged["error"]


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def _json_env() -> dict[str, str]:
    return {"PSA_LEDGER_LOG_FORMAT": "json"}


def _basic(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def _request_id_recorded_for(service: Service, ticket_id: str) -> str:
    [row] = read(
        service.db,
        "SELECT request_id FROM events WHERE ticket_id = ? AND action = 'CREATE'",
        (ticket_id,),
    )
    return str(row["request_id"])


def _with_password(db: Path | str) -> Path | str:
    """A PostgreSQL URL with `URL_PASSWORD` in it, as an operator might write one."""
    if not is_url(db):
        return db
    return str(db).replace("://postgres@", f"://postgres:{URL_PASSWORD}@", 1)

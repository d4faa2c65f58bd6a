"""Every row of CONTRACT §2's answers table, through HTTP, with what the log recorded."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from service.settings import Settings
from service.storage.backend import is_url
from service.storage.postgres.appends import APPEND_LOCK
from tests.conftest import NCENTRAL, OPERATOR, basic
from tests.support.live import read

AUTH = basic(NCENTRAL)
PROBLEM = "application/problem+json"


def create(ticket: str = "1001", **extra: Any) -> dict[str, Any]:
    return {
        "action": "CREATE",
        "ncentralTicketId": ticket,
        "title": "Disk C: 95% full",
        "details": "Device: srv-01\nFree: 5%",
        **extra,
    }


def act(action: str, ticket: str = "1001", **extra: Any) -> dict[str, Any]:
    return {"action": action, "ncentralTicketId": ticket, **extra}


async def send(client: AsyncTestClient, body: Any, *, method: str = "PUT", **kw: Any):
    if isinstance(body, (bytes, str)):
        return await client.request(method, "/ncentral/tickets", content=body, headers=AUTH, **kw)
    return await client.request(method, "/ncentral/tickets", json=body, headers=AUTH, **kw)


@pytest.fixture
def settings(log_db: Path | str) -> Settings:
    """The endpoint's tests run on each backend."""
    return Settings(db=str(log_db), public_url="https://psa.example.test")


def log(settings: Settings) -> list[tuple[Any, ...]]:
    rows = read(
        settings.db, "SELECT ticket_id, action, outcome, state_after FROM events ORDER BY position"
    )
    return [tuple(row.values()) for row in rows]


def state(settings: Settings, ticket: str = "1001") -> str:
    rows = read(settings.db, "SELECT state FROM tickets WHERE ncentral_ticket_id = ?", (ticket,))
    return str(rows[0]["state"])


def count_tickets(settings: Settings) -> int:
    return len(read(settings.db, "SELECT ncentral_ticket_id FROM tickets"))


def payloads(settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(row["payload"]) for row in read(settings.db, "SELECT payload FROM events")]


@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_create_answers_identity_and_opens_the_ticket(client, settings, method) -> None:
    response = await send(client, create(), method=method)
    assert response.status_code == 200
    body = response.json()
    assert body["externalTicketId"].startswith("PSA-")
    assert body["ticketUrl"] == f"https://psa.example.test/tickets/{body['externalTicketId']}"
    assert state(settings) == "open"
    assert log(settings) == [
        ("1001", "CREATE", "accepted", "pending"),
        ("1001", "identity_delivered", "recorded", "open"),
    ]


async def test_update_resolve_reopen_answer_the_same_identity(client, settings) -> None:
    identity = (await send(client, create())).json()
    for action, expected in [
        ("UPDATE", "open"),
        ("RESOLVE", "closed"),
        ("REOPEN", "reopened"),
        ("CLOSE", "closed"),
    ]:
        response = await send(client, act(action, details=f"{action} note"))
        assert (response.status_code, response.json()) == (200, identity)
        assert state(settings) == expected


async def test_a_retry_gets_the_original_answer_and_is_logged_as_duplicate(
    client, settings
) -> None:
    await send(client, create())
    resolve = act("RESOLVE", details="cleared at 10:02")
    first = await send(client, resolve)
    retry = await send(client, resolve)
    assert retry.status_code == first.status_code == 200
    assert retry.json() == first.json()
    assert log(settings)[-1] == ("1001", "RESOLVE", "duplicate", "closed")


async def test_create_again_with_another_body_answers_the_existing_identity(
    client, settings
) -> None:
    identity = (await send(client, create())).json()
    again = await send(client, create(title="Disk C: 99% full"))
    assert (again.status_code, again.json()) == (200, identity)
    assert log(settings)[-1] == ("1001", "CREATE", "existing", "open")
    assert count_tickets(settings) == 1


async def test_connection_test_answers_identity_and_creates_nothing(client, settings) -> None:
    response = await send(
        client,
        {
            "action": "CREATE",
            "ncentralTicketId": "TEST_NC_TICKET_ID_9",
            "title": "Test",
            "details": "Test",
        },
    )
    assert response.status_code == 200
    assert set(response.json()) == {"externalTicketId", "ticketUrl"}
    assert log(settings) == [("TEST_NC_TICKET_ID_9", "CREATE", "connection_test", None)]
    assert count_tickets(settings) == 0
    # The ticketUrl answered to the test opens a page listing the tests that arrived.
    path = response.json()["ticketUrl"].removeprefix("https://psa.example.test")
    page = await client.get(path, headers=basic(OPERATOR))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "N-central connection tests" in page.text
    assert "TEST_NC_TICKET_ID_9" in page.text


async def test_action_not_allowed_is_409_naming_state_action_and_allowed(client, settings) -> None:
    await send(client, create())
    await send(client, act("RESOLVE"))
    response = await send(client, act("UPDATE", details="late note"))
    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert (problem["state"], problem["action"]) == ("closed", "UPDATE")
    assert problem["allowedActions"] == ["CREATE", "REOPEN"]
    assert log(settings)[-1] == ("1001", "UPDATE", "rejected", "closed")


@pytest.mark.parametrize("action", ["UPDATE", "RESOLVE", "REOPEN"])
async def test_unknown_ticket_is_404(client, settings, action) -> None:
    response = await send(client, act(action, ticket="555"))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    assert log(settings) == [("555", action, "not_found", "new")]


async def test_psa_ticket_number_of_another_ticket_is_409(client, settings) -> None:
    await send(client, create())
    response = await send(client, act("UPDATE", psaTicketNumber="PSA-999999"))
    assert response.status_code == 409
    assert response.json()["field"] == "psaTicketNumber"
    assert state(settings) == "open"


async def test_malformed_json_is_400_and_logged_as_a_description(client, settings) -> None:
    response = await send(client, b'{"action": "CREATE", ')
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    [(_, action, outcome, _)] = log(settings)
    payload = payloads(settings)[0]["sample"]
    assert (action, outcome, payload) == ("invalid_request", "invalid", '{"action": "CREATE", ')


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ncentralTicketId": "1"}, "action"),
        ({"action": "UPDATE"}, "ncentralTicketId"),
        ({"action": "UPDATE", "ncentralTicketId": 1001}, "ncentralTicketId"),
        ({"action": "EXPLODE", "ncentralTicketId": "1001"}, "action"),
        ({"action": "CREATE", "ncentralTicketId": "1001", "details": "d"}, "title"),
        (
            {
                "action": "CREATE",
                "ncentralTicketId": "1001",
                "title": "t",
                "details": "d",
                "customTags": ["a"],
            },
            "customTags",
        ),
        ([1, 2, 3], None),
    ],
)
async def test_missing_or_ill_typed_field_is_422_naming_it(client, settings, body, field) -> None:
    response = await send(client, body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json().get("field") == field
    assert [row[2] for row in log(settings)] == ["invalid"]


async def test_unknown_keys_are_kept_in_the_payload(client, settings) -> None:
    await send(client, create(severity="critical"))
    assert payloads(settings)[0]["severity"] == "critical"


async def test_body_over_one_mebibyte_is_413(client, settings) -> None:
    response = await send(client, create(details="x" * (1024 * 1024 + 1)))
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM)
    assert [row[2] for row in log(settings)] == ["invalid"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(OPERATOR),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer x"},
        basic(NCENTRAL.__class__("ncentral", "wrong")),
    ],
)
async def test_no_or_wrong_credentials_is_401_with_challenge(client, settings, headers) -> None:
    response = await client.put("/ncentral/tickets", json=create(), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="psa-ledger"'
    assert response.headers["content-type"].startswith(PROBLEM)
    assert log(settings) == []


async def test_ncentral_credential_cannot_read_operator_pages(client) -> None:
    identity = (await send(client, create())).json()
    path = identity["ticketUrl"].removeprefix("https://psa.example.test")
    assert (await client.get(path, headers=AUTH)).status_code == 401
    assert (await client.get(path, headers=basic(OPERATOR))).status_code == 200


async def test_store_unavailable_is_503_with_retry_after_and_nothing_half_written(
    log_db: Path | str,
) -> None:
    from service.http.app import create_app
    from tests.conftest import CREDENTIALS

    settings = Settings(db=str(log_db), busy_timeout_ms=50)
    async with AsyncTestClient(create_app(settings, CREDENTIALS)) as client:
        await send(client, create())
        before = log(settings)
        with holding_the_log(log_db):
            response = await send(client, act("UPDATE", details="while locked"))
        assert response.status_code == 503
        assert response.headers["retry-after"].isdigit()
        assert response.headers["content-type"].startswith(PROBLEM)
        assert log(settings) == before
        assert state(settings) == "open"
        retried = await send(client, act("UPDATE", details="while locked"))
        assert retried.status_code == 200
        assert log(settings)[-1] == ("1001", "UPDATE", "accepted", "open")


@contextmanager
def holding_the_log(db: Path | str) -> Iterator[None]:
    """Another process holds the log for longer than the busy timeout: on SQLite an
    exclusive transaction, on PostgreSQL another session holding the replicas' append lock.
    """
    if not is_url(db):
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return
    with psycopg.connect(str(db)) as session, session.transaction():
        session.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
        yield


async def test_health_metrics_and_schema_need_no_credentials(client) -> None:
    await send(client, create())
    await send(client, act("REOPEN"))
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    metrics = (await client.get("/metrics")).text
    assert 'psa_ledger_events_total{action="CREATE",outcome="accepted"} 1.0' in metrics
    assert 'psa_ledger_events_total{action="REOPEN",outcome="rejected"} 1.0' in metrics
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/ncentral/tickets" in schema["paths"]

"""Callbacks on N-central's REST API: a Bearer session obtained for the configured JWT."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live import Log, Service, wait_for
from tests.support.ncentral_fake import AUTHENTICATE, REST_TICKETS, FakeNcentral

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fake(module_db: Path | str) -> Iterator[FakeNcentral]:
    """A fake N-central of its own for each backend's run of this module."""
    with FakeNcentral().running() as fake:
        yield fake


@pytest.fixture(scope="module")
def service(fake: FakeNcentral, module_db: Path | str) -> Iterator[Service]:
    service = _rest_service(fake, module_db).start()
    yield service
    service.stop()
    assert Log(service.db).replay_problems() == []


def test_one_session_carries_every_callback(service: Service, fake: FakeNcentral) -> None:
    log = Log(service.db)
    for ticket_id in ("3001", "3002"):
        assert service.ticket("CREATE", ticket_id).status_code == 202

    wait_for(lambda: log.state("3001") == log.state("3002") == "open", what="both deliveries")

    [authenticate] = fake.calls(AUTHENTICATE)
    assert authenticate.authorization == f"Bearer {fake.jwt}"
    posts = fake.calls(REST_TICKETS)
    assert [p.authorization for p in posts] == ["Bearer access-1"] * 2
    assert {p.content_type for p in posts} == {"application/json"}
    number = log.callback("3002")["external_ticket_id"]
    assert fake.callbacks_for("3002")[0].json() == {
        "ticketUrl": f"{service.url}/tickets/{number}",
        "ticketNumber": number,
        "psaCustomTicketId": 3002,
    }


def test_a_session_ended_by_ncentral_is_opened_again(service: Service, fake: FakeNcentral) -> None:
    log = Log(service.db)
    service.ticket("CREATE", "3003")
    wait_for(lambda: log.state("3003") == "open", what="the first delivery")
    sessions = len(fake.calls(AUTHENTICATE))
    fake.expire_sessions()

    service.ticket("CREATE", "3004")

    wait_for(lambda: log.state("3004") == "open", what="delivery on a new session")
    assert len(fake.calls(AUTHENTICATE)) == sessions + 1
    assert [c.status for c in fake.callbacks_for("3004")] == [401, 200]
    assert log.actions("3004") == ["CREATE", "callback_attempted", "callback_delivered"]
    assert json.loads(log.events("3004")[1]["payload"])["status"] == 200


def test_an_expired_access_token_is_renewed_before_use(tmp_path: Path) -> None:
    """N-central's tokens say when they expire; one about to expire is not sent."""
    with FakeNcentral(access_lifetime=30).running() as fake:
        service = _rest_service(fake, tmp_path / "ledger.db").start()
        try:
            log = Log(service.db)
            for ticket_id in ("3005", "3006"):
                service.ticket("CREATE", ticket_id)
                wait_for(
                    lambda t=ticket_id: log.state(t) == "open", what=f"delivery of {ticket_id}"
                )
        finally:
            service.stop()
    assert len(fake.calls(AUTHENTICATE)) == 2
    assert [c.status for c in fake.calls(REST_TICKETS)] == [200, 200]


def test_an_unexpected_error_in_a_try_is_recorded_and_dead_lettered(tmp_path: Path) -> None:
    """A token no HTTP header can carry fails inside the client, where nothing expected it.

    Unrecorded, that try would fail again each time its lease ran out, forever, with
    nothing in the log; recorded, it is one attempt, a dead letter, and its reason.
    """
    with FakeNcentral(access_prefix="jeton-\N{LATIN SMALL LETTER E WITH ACUTE}-").running() as fake:
        service = _rest_service(fake, tmp_path / "ledger.db").start()
        try:
            log = Log(service.db)
            service.ticket("CREATE", "3007")
            wait_for(
                lambda: "callback_dead_lettered" in log.actions("3007"), what="the dead letter"
            )
            row = log.callback("3007")
        finally:
            service.stop()
    assert log.actions("3007") == ["CREATE", "callback_attempted", "callback_dead_lettered"]
    attempt = json.loads(log.events("3007")[1]["payload"])
    assert attempt["error"].startswith("unexpected error: UnicodeEncodeError")
    assert (row["status"], row["attempts"], row["last_error"]) == ("dead", 1, attempt["error"])
    assert fake.calls(REST_TICKETS) == []
    assert log.replay_problems() == []


def _rest_service(fake: FakeNcentral, db: Path | str) -> Service:
    return Service(
        db,
        create_mode="async",
        ncentral_api="rest",
        ncentral_url=fake.url,
        ncentral_token=fake.jwt,
        callback_schedule="0.2,0.2,0.2",
        callback_timeout="1",
    )

"""Async CREATE with callbacks on N-central's legacy API, against a real psa-ledger process.

One psa-ledger and one fake N-central serve the whole module; each test owns its tickets.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cookbook import for_log as cookbook
from tests.support.live import Log, Service, read, wait_for
from tests.support.ncentral_fake import LEGACY_PREFIX, FakeNcentral, Reply, basic_auth

pytestmark = pytest.mark.slow

SCHEDULE = (0.2, 0.2, 0.2)
TIMEOUT = 1.0


@pytest.fixture(scope="module")
def fake(module_db: Path | str) -> Iterator[FakeNcentral]:
    """A fake N-central of its own for each backend's run of this module."""
    with FakeNcentral().running() as fake:
        yield fake


@pytest.fixture(scope="module")
def service(
    fake: FakeNcentral, module_db: Path | str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    service = Service(
        module_db,
        log_dir=tmp_path_factory.mktemp("legacy"),
        create_mode="async",
        ncentral_url=fake.url,
        ncentral_username=fake.username,
        ncentral_password=fake.password,
        callback_schedule=",".join(map(str, SCHEDULE)),
        callback_timeout=str(TIMEOUT),
    ).start()
    yield service
    service.stop()
    assert Log(service.db).replay_problems() == []


@pytest.fixture
def log(service: Service) -> Log:
    return Log(service.db)


def test_create_is_answered_202_empty_and_the_first_callback_opens_the_ticket(
    service: Service, fake: FakeNcentral, log: Log
) -> None:
    answer = service.ticket("CREATE", "1001")

    assert (answer.status_code, answer.content) == (202, b"")
    assert log.callback("1001") is not None, "the 202 promises a callback that is on disk"
    wait_for(lambda: log.state("1001") == "open", what="the callback to open the ticket")
    [call] = fake.callbacks_for("1001")
    assert (call.method, call.path) == ("PUT", f"{LEGACY_PREFIX}1001")
    assert call.authorization == basic_auth(fake.username, fake.password)
    assert call.content_type == "application/json"
    number = log.callback("1001")["external_ticket_id"]
    assert call.json() == {
        "ticketUrl": f"{service.url}/tickets/{number}",
        "ticketNumber": number,
        "psaCustomTicketId": 1001,
    }
    assert _story(log, "1001") == [
        ("CREATE", "new", "pending"),
        ("callback_attempted", None, None),
        ("callback_delivered", "pending", "open"),
    ]
    assert _attempts(log, "1001") == [(200, None)]


def test_three_503s_are_retried_on_the_schedule_then_delivered(
    service: Service, fake: FakeNcentral, log: Log
) -> None:
    fake.script("1002", Reply(503), Reply(503), Reply(503))

    service.ticket("CREATE", "1002")

    wait_for(lambda: log.state("1002") == "open", what="delivery after three 503s")
    calls = fake.callbacks_for("1002")
    assert [c.status for c in calls] == [503, 503, 503, 200]
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert all(gap >= delay for gap, delay in zip(gaps, SCHEDULE, strict=True)), gaps
    assert _attempts(log, "1002") == [(503, None), (503, None), (503, None), (200, None)]
    assert log.actions("1002").count("callback_delivered") == 1


def test_a_timeout_is_retried_and_never_delays_the_answer_to_ncentral(
    service: Service, fake: FakeNcentral, log: Log
) -> None:
    fake.script("1003", Reply(200, delay=TIMEOUT * 3))

    answer = service.ticket("CREATE", "1003")
    answered = time.monotonic()

    assert answer.status_code == 202
    wait_for(lambda: log.state("1003") == "open", timeout=15, what="delivery after a timeout")
    # Had the answer waited on the callback, it would have come a whole timeout after the
    # callback reached N-central; it came before the callback could even time out.
    first = fake.callbacks_for("1003")[0]
    assert answered < first.at + TIMEOUT
    (status, error), delivered = _attempts(log, "1003")
    assert status is None and error.startswith("timeout")
    assert delivered == (200, None)


def test_429_waits_at_least_as_long_as_retry_after(
    service: Service, fake: FakeNcentral, log: Log
) -> None:
    fake.script("1004", Reply(429, {"Retry-After": "1"}))

    service.ticket("CREATE", "1004")

    wait_for(lambda: log.state("1004") == "open", what="delivery after a 429")
    first, second = fake.callbacks_for("1004")
    assert second.at - first.at >= 1.0 > SCHEDULE[0]
    assert json.loads(log.events("1004")[1]["payload"])["retryAfter"] == 1.0


def test_the_schedule_spent_dead_letters_the_callback(
    service: Service, fake: FakeNcentral, log: Log
) -> None:
    fake.script("1005", *[Reply(502)] * (len(SCHEDULE) + 1))

    service.ticket("CREATE", "1005")

    wait_for(lambda: "callback_dead_lettered" in log.actions("1005"), what="the dead letter")
    assert len(fake.callbacks_for("1005")) == len(SCHEDULE) + 1
    assert log.state("1005") == "pending"
    row = log.callback("1005")
    assert (row["status"], row["last_error"], row["next_attempt_at"]) == ("dead", "HTTP 502", None)
    assert _metric(service, 'psa_ledger_callbacks{status="dead"}') >= 1
    owed = [
        tuple(found.values()) for found in read(service.db, cookbook(service.db)["callbacks-owed"])
    ]
    assert ("1005", row["external_ticket_id"], "dead", len(SCHEDULE) + 1, None, "HTTP 502") in owed


def _metric(service: Service, name: str) -> float:
    """One sample of /metrics, as Prometheus would scrape it (no credentials)."""
    text = httpx.get(f"{service.url}/metrics").text
    return float(next(line for line in text.splitlines() if line.startswith(name)).split()[-1])


def test_400_dead_letters_at_once_and_a_retry_from_the_shell_delivers(
    service: Service, fake: FakeNcentral, log: Log
) -> None:
    fake.script("1006", Reply(400))
    service.ticket("CREATE", "1006")
    wait_for(lambda: "callback_dead_lettered" in log.actions("1006"), what="the dead letter")
    assert len(fake.callbacks_for("1006")) == 1

    listed = service.cli("callbacks", "list", "--status", "dead", "--format", "json")
    table = service.cli("callbacks", "list")
    retried = service.cli("callbacks", "retry", "1006")

    dead = {c["ncentralTicketId"]: c for c in json.loads(listed.stdout)["callbacks"]}
    assert dead["1006"]["status"] == "dead"
    assert dead["1006"]["lastError"] == "HTTP 400"
    assert "1006" in table.stdout and "HTTP 400" in table.stdout
    assert retried.returncode == 0, retried.stderr
    wait_for(lambda: log.state("1006") == "open", what="delivery after the shell's retry")
    assert log.actions("1006")[-3:] == [
        "callback_retry_requested",
        "callback_attempted",
        "callback_delivered",
    ]
    assert log.events("1006")[-3]["actor"].startswith("cli")


def test_a_retry_through_the_api_delivers_a_dead_letter(
    service: Service, fake: FakeNcentral, log: Log
) -> None:
    fake.script("1007", Reply(404))
    service.ticket("CREATE", "1007")
    wait_for(lambda: "callback_dead_lettered" in log.actions("1007"), what="the dead letter")

    listed = service.as_operator("GET", "/api/callbacks?status=dead")
    retried = service.as_operator("POST", "/api/callbacks/1007/retry")

    assert "1007" in [c["ncentralTicketId"] for c in listed.json()["callbacks"]]
    assert retried.status_code == 202
    assert retried.json()["status"] == "pending"
    wait_for(lambda: log.state("1007") == "open", what="delivery after the API's retry")
    assert log.events("1007")[-3]["actor"] == "operator"
    assert service.as_operator("POST", "/api/callbacks/1007/retry").status_code == 409


def test_retrying_what_is_not_owed_is_a_problem_not_an_error(service: Service) -> None:
    unknown = service.as_operator("POST", "/api/callbacks/999999/retry")

    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["ticket"] == "999999"
    assert httpx.get(f"{service.url}/api/callbacks").status_code == 401
    assert service.cli("callbacks", "retry", "999999").returncode == 1
    assert service.cli("callbacks", "retry").returncode == 2


def test_a_ticket_resolved_while_pending_stays_closed_and_is_still_called_back(
    service: Service, fake: FakeNcentral, log: Log
) -> None:
    fake.script("1008", Reply(503, delay=0.3))
    service.ticket("CREATE", "1008")

    resolved = service.ticket("RESOLVE", "1008")

    assert resolved.status_code == 200
    assert log.state("1008") == "closed"
    wait_for(lambda: "callback_delivered" in log.actions("1008"), what="the late callback")
    assert log.state("1008") == "closed"
    assert _story(log, "1008")[-1] == ("callback_delivered", "closed", "closed")


def test_sync_mode_tickets_owe_no_callback(tmp_path: Path, fake: FakeNcentral) -> None:
    """In sync mode the answer carries the identity: nothing is owed, nothing is sent."""
    service = Service(tmp_path / "sync.db", ncentral_url=fake.url).start()
    try:
        answer = service.ticket("CREATE", "1009")
        assert answer.status_code == 200
        assert Log(service.db).callback("1009") is None
        assert fake.callbacks_for("1009") == []
    finally:
        service.stop()


_ARABIC_INDIC_123 = (
    "\N{ARABIC-INDIC DIGIT ONE}\N{ARABIC-INDIC DIGIT TWO}\N{ARABIC-INDIC DIGIT THREE}"
)


@pytest.mark.parametrize("ticket_id", ["²", _ARABIC_INDIC_123], ids=["superscript", "arabic-indic"])
def test_a_ticket_id_that_is_not_ascii_digits_is_refused_at_the_door_and_never_owed(
    service: Service, fake: FakeNcentral, log: Log, ticket_id: str
) -> None:
    """`int('١٢٣')` is 123, someone else's ticket: such an id never gets as far as a callback."""
    answer = service.ticket("CREATE", ticket_id)

    assert answer.status_code == 422 and answer.json()["field"] == "ncentralTicketId"
    assert log.callback(ticket_id) is None
    sent = [c for c in fake.calls() if c.path.startswith(LEGACY_PREFIX)]
    assert not [c for c in sent if c.json()["psaCustomTicketId"] == 123]


def test_a_ticket_id_too_big_for_a_number_is_dead_lettered_and_never_sent(
    service: Service, fake: FakeNcentral, log: Log
) -> None:
    """`psaCustomTicketId` is N-central's number for the ticket; nothing else is sent as one.

    Digits past 2**63-1 pass the door (they are digits) but are no number N-central has:
    the try is recorded with its reason and dead-lettered, never sent, never retried.
    """
    ticket_id = "9" * 20
    assert service.ticket("CREATE", ticket_id).status_code == 202

    wait_for(lambda: "callback_dead_lettered" in log.actions(ticket_id), what="the dead letter")

    assert log.actions(ticket_id) == ["CREATE", "callback_attempted", "callback_dead_lettered"]
    [(status, error)] = _attempts(log, ticket_id)
    assert status is None and "not N-central's ticket number" in error
    row = log.callback(ticket_id)
    assert (row["status"], row["last_error"]) == ("dead", error)
    assert log.state(ticket_id) == "pending"
    sent = [c for c in fake.calls() if c.path.startswith(LEGACY_PREFIX)]
    assert not [c for c in sent if c.path.endswith(ticket_id)]


#: The fake writes headers as Latin-1; these are the UTF-8 bytes of Arabic-Indic 300.
_ARABIC_INDIC_300 = (
    ("\N{ARABIC-INDIC DIGIT THREE}\N{ARABIC-INDIC DIGIT ZERO}\N{ARABIC-INDIC DIGIT ZERO}")
    .encode()
    .decode("latin-1")
)


@pytest.mark.parametrize(
    ("ticket_id", "retry_after"),
    [("1011", "²"), ("1012", _ARABIC_INDIC_300), ("1013", "9" * 5000), ("1014", "soon")],
    ids=["superscript", "arabic-indic", "5000-digits", "words"],
)
def test_a_retry_after_that_is_not_seconds_or_a_date_leaves_the_wait_to_the_schedule(
    service: Service, fake: FakeNcentral, log: Log, ticket_id: str, retry_after: str
) -> None:
    fake.script(ticket_id, Reply(503, {"Retry-After": retry_after}))

    service.ticket("CREATE", ticket_id)

    wait_for(lambda: log.state(ticket_id) == "open", timeout=5, what="delivery on the schedule")
    first, second = fake.callbacks_for(ticket_id)
    assert SCHEDULE[0] <= second.at - first.at < 5
    assert [json.loads(e["payload"]).get("retryAfter") for e in log.events(ticket_id)[1:3]] == [
        None,
        None,
    ]


def _story(log: Log, ticket_id: str) -> list[tuple[str, str | None, str | None]]:
    return [(e["action"], e["state_before"], e["state_after"]) for e in log.events(ticket_id)]


def _attempts(log: Log, ticket_id: str) -> list[tuple[int | None, str | None]]:
    payloads = [
        json.loads(e["payload"])
        for e in log.events(ticket_id)
        if e["action"] == "callback_attempted"
    ]
    return [(p["status"], p["error"]) for p in payloads]

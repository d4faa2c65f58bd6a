"""Hostile bodies against a real server: each is refused with a 4xx naming what is wrong,
each is in the log, and the log still verifies afterwards (issue 7, item 1).

Before the fix, deep nesting and invalid UTF-8 answered 500 and left no event; Unicode
digits made a ticket N-central could never have; huge numbers were stored where the API
could no longer read them as an object.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import msgspec
import pytest

from statemachine.events import MAX_DEPTH
from tests.support.harness import Server, cli
from tests.support.live import read

PROBLEM = "application/problem+json"
_numbers = itertools.count(7000)


def create(**extra: Any) -> dict[str, Any]:
    return {
        "action": "CREATE",
        "ncentralTicketId": str(next(_numbers)),
        "title": "Disk C: 95% full",
        "details": "Device: srv-01",
        **extra,
    }


def create_with(key: bytes, raw_value: bytes) -> bytes:
    """A valid CREATE with one more key whose value is given as raw JSON bytes."""
    head = msgspec.json.encode(create())[:-1]
    return head + b',"' + key + b'":' + raw_value + b"}"


def create_with_title(raw_title: bytes) -> bytes:
    body = create(title="TITLE")
    return msgspec.json.encode(body).replace(b'"TITLE"', raw_title)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def send(server: Server, body: bytes) -> tuple[Any, dict[str, Any]]:
    """PUT the bytes; returns the answer and the event the log recorded for this request."""
    request_id = uuid.uuid4().hex
    response = server.ncentral.put(
        "/ncentral/tickets",
        content=body,
        headers={"Content-Type": "application/json", "X-Request-Id": request_id},
    )
    return response, event_of(server, request_id)


def event_of(server: Server, request_id: str) -> dict[str, Any]:
    rows = read(
        server.db,
        "SELECT * FROM events WHERE request_id = ? AND action <> 'identity_delivered'",
        (request_id,),
    )
    assert len(rows) == 1, f"expected one event for request {request_id}, found {len(rows)}"
    return rows[0]


UNREADABLE = {
    "deep array, 2,000": nested(2000),
    "deep array, 10,000": nested(10_000),
    "deep object, 2,000": nested_objects(2000),
    "deep object, 10,000": nested_objects(10_000),
    "deep array in an unknown field, 2,000": create_with(b"extra", nested(2000)),
    "deep object in an unknown field, 10,000": create_with(b"extra", nested_objects(10_000)),
    "one level past the bound": create_with(b"extra", nested(MAX_DEPTH)),
    "invalid UTF-8 in a known field": create_with_title(b'"\xff\xfe"'),
    "invalid UTF-8 in an unknown field": create_with(b"extra", b'"caf\xc3"'),
    "invalid UTF-8 in a key": create_with(b"k\xff", b'"v"'),
    "a surrogate encoded in UTF-8": create_with_title(b'"\xed\xa0\x80"'),
    "overlong UTF-8": create_with(b"extra", b'"\xc0\xaf"'),
    "a lone surrogate escape": create_with_title(b'"\\ud800"'),
    "a lone low surrogate escape": create_with(b"extra", b'"\\udc00x"'),
}


@pytest.mark.parametrize("body", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_bodies_are_400_and_logged_as_a_description(server: Server, body: bytes) -> None:
    response, event = send(server, body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["title"] == "Malformed JSON"
    assert "Traceback" not in response.text
    assert (event["action"], event["outcome"]) == ("invalid_request", "invalid")
    description = msgspec.json.decode(event["payload"])
    assert description["unreadable"] is True
    assert description["bytes"] == len(body)
    assert msgspec.json.decode(event["response"])["body"] == problem


def test_the_problem_says_what_is_wrong(server: Server) -> None:
    deep, _ = send(server, create_with(b"extra", nested(2000)))
    assert f"deeper than {MAX_DEPTH}" in deep.json()["detail"]
    bad_utf8, _ = send(server, create_with_title(b'"\xff"'))
    assert "UTF-8" in bad_utf8.json()["detail"]


REFUSED_FIELDS = {
    "Arabic-Indic digits": (create(ncentralTicketId="\u0661\u0662\u0663"), "ncentralTicketId"),
    "a superscript two": (create(ncentralTicketId="\u00b2"), "ncentralTicketId"),
    "fullwidth digits": (create(ncentralTicketId="\uff11\uff12"), "ncentralTicketId"),
    "a NUL after the digits": (create(ncentralTicketId="12\x00"), "ncentralTicketId"),
    "leading zeros": (create(ncentralTicketId="0042"), "ncentralTicketId"),
    "letters": (create(ncentralTicketId="abc"), "ncentralTicketId"),
}


@pytest.mark.parametrize(("body", "field"), REFUSED_FIELDS.values(), ids=REFUSED_FIELDS.keys())
def test_ticket_ids_n_central_cannot_send_are_422_naming_the_field(
    server: Server, body: dict[str, Any], field: str
) -> None:
    response, event = send(server, msgspec.json.encode(body))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["field"] == field
    assert (event["action"], event["outcome"]) == ("invalid_request", "invalid")
    assert msgspec.json.decode(event["payload"]) == body, "a readable body is kept as sent"


HUGE = {
    "an integer of 5,000 digits": (b"9" * 5000, "extra"),
    "a float past the double range": (b"1e999", "extra"),
    "a negative float past the double range": (b"-1.5e400", "extra"),
}


@pytest.mark.parametrize(("number", "field"), HUGE.values(), ids=HUGE.keys())
def test_numbers_no_reader_could_decode_are_422_naming_the_field(
    server: Server, number: bytes, field: str
) -> None:
    body = create_with(field.encode(), number)
    response, event = send(server, body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert (event["action"], event["outcome"]) == ("invalid_request", "invalid")
    assert msgspec.json.decode(event["payload"])["bytes"] == len(body)


def test_nesting_up_to_the_bound_is_accepted_and_readable_by_the_api(server: Server) -> None:
    for depth in (500, MAX_DEPTH - 1):  # the top-level object is one more level
        body = create_with(b"extra", nested(depth))
        response, event = send(server, body)
        assert response.status_code == 200, response.text
        assert (event["action"], event["outcome"]) == ("CREATE", "accepted")
        assert event["payload"] == body.decode(), "accepted bodies are stored byte for byte"
        seen = server.operator.get(
            "/api/events", params={"ticket": event["ticket_id"], "action": "CREATE"}
        )
        assert seen.status_code == 200
        assert isinstance(seen.json()["events"][0]["payload"], dict)


def test_nul_in_a_title_is_kept_whole(server: Server) -> None:
    body = create(title="before\x00after")
    response, _ = send(server, msgspec.json.encode(body))
    assert response.status_code == 200
    ticket = server.operator.get(f"/api/tickets/{response.json()['externalTicketId']}").json()
    assert ticket["title"] == "before\x00after"


def test_after_every_hostile_body_the_log_verifies_and_the_api_reads_it(server: Server) -> None:
    bodies = [
        *UNREADABLE.values(),
        *(msgspec.json.encode(body) for body, _ in REFUSED_FIELDS.values()),
        *(create_with(field.encode(), number) for number, field in HUGE.values()),
        msgspec.json.encode(create(title="a\x00b", customTags={"k\x00": "v\x00"})),
    ]
    for body in bodies:
        response, _ = send(server, body)
        assert response.status_code < 500
    done = cli("verify", db=server.db)
    assert done.returncode == 0
    events = server.operator.get("/api/events", params={"limit": 1000})
    assert events.status_code == 200
    assert all(isinstance(e["payload"], dict) for e in events.json()["events"])

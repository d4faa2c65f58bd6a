"""The operator API on a real server: filters, cursors, bad parameters, time travel."""

from __future__ import annotations

import base64
import threading
from typing import Any
from urllib.parse import urlencode

import msgspec
import pytest

from tests.support.harness import Server


@pytest.fixture(scope="module")
def seeded(server: Server) -> Server:
    """Two tickets with a little history, a refusal, a retry and an unreadable body."""
    create = {"action": "CREATE", "title": "Disk", "details": "C: 1% free"}
    server.send(ncentralTicketId="11", customTags={"site": "A"}, **create)
    server.send(ncentralTicketId="22", customTags={"site": "B"}, **create)
    server.send(action="UPDATE", ncentralTicketId="11", details="C: 0% free")
    server.send(action="REOPEN", ncentralTicketId="11")
    server.send(action="RESOLVE", ncentralTicketId="22")
    server.send(action="RESOLVE", ncentralTicketId="22")
    server.ncentral.put("/ncentral/tickets", content=b"{not json")
    return server


def events(server: Server, **params: Any) -> dict[str, Any]:
    response = server.operator.get("/api/events", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_filters_narrow_the_log(seeded: Server) -> None:
    everything = events(seeded)["events"]
    assert [e["position"] for e in everything] == list(range(1, len(everything) + 1))
    assert everything[0]["payload"]["customTags"] == {"site": "A"}
    rejected = events(seeded, outcome="rejected")["events"]
    assert [(e["ticket_id"], e["action"]) for e in rejected] == [("11", "REOPEN")]
    resolves = events(seeded, ticket="22", action="close")["events"]
    assert [e["outcome"] for e in resolves] == ["accepted", "duplicate"]
    assert events(seeded, actor="nobody")["events"] == []
    last = everything[-1]["recorded_at"]
    assert [e["position"] for e in events(seeded, since=last)["events"]] == [len(everything)]
    assert len(events(seeded, until=everything[1]["recorded_at"])["events"]) == 2
    newest = events(seeded, order="desc", limit=1)
    assert newest["events"][0]["action"] == "invalid_request"
    assert newest["next"] is not None


def test_json_lines_by_accept_header_or_format(seeded: Server) -> None:
    by_header = seeded.operator.get(
        "/api/events", params={"limit": 2}, headers={"Accept": "application/x-ndjson"}
    )
    by_param = seeded.operator.get("/api/events", params={"limit": 2, "format": "jsonl"})
    for response in (by_header, by_param):
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [msgspec.json.decode(line) for line in response.text.splitlines()]
        assert [line["position"] for line in lines] == [1, 2]
        assert 'rel="next"' in response.headers["link"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"since": "last tuesday"}, "since"),
        ({"until": "2024-13-45"}, "until"),
        ({"outcome": "maybe"}, "outcome"),
        ({"action": "DELETE"}, "action"),
        ({"cursor": "%%%"}, "cursor"),
        ({"tiket": "11"}, "tiket"),
        ({"format": "xml"}, "format"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"cursor": "YXNjOjk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk"}, "cursor"),
    ],
)
def test_bad_parameters_are_named(seeded: Server, params: dict[str, str], parameter: str) -> None:
    response = seeded.operator.get("/api/events", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["parameter"] == parameter


def test_a_cursor_keeps_its_order(seeded: Server) -> None:
    cursor = events(seeded, limit=1)["next"]
    response = seeded.operator.get("/api/events", params={"cursor": cursor, "order": "desc"})
    assert response.status_code == 400
    assert response.json()["parameter"] == "cursor"


def test_the_next_link_keeps_the_parameters_as_sent(seeded: Server) -> None:
    """Each process hashes names afresh: walking a set of them reordered the link."""
    sent = [("ticket", "22"), ("format", "jsonl"), ("order", "desc"), ("limit", "1")]
    link = seeded.operator.get("/api/events", params=sent).headers["link"]
    assert link.startswith(f"</api/events?{urlencode(sent)}&cursor=")


def test_operator_credentials_are_required(seeded: Server) -> None:
    assert seeded.ncentral.get("/api/events").status_code == 401
    assert seeded.ncentral.get("/api/tickets").status_code == 401


def test_cursor_pages_neither_skip_nor_repeat_while_events_arrive(seeded: Server) -> None:
    stop = threading.Event()

    def append() -> None:
        number = 0
        while not stop.is_set() and number < 300:
            seeded.send(action="UPDATE", ncentralTicketId="11", details=f"note {number}")
            number += 1

    writer = threading.Thread(target=append)
    writer.start()
    try:
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 7}
            if cursor:
                params["cursor"] = cursor
            page = events(seeded, **params)
            seen += [e["position"] for e in page["events"]]
            cursor = page["next"]
            if cursor is None:
                break
    finally:
        stop.set()
        writer.join()
    assert seen == list(range(1, len(seen) + 1))
    newest = events(seeded, order="desc", limit=1)["events"][0]["position"]
    backwards: list[int] = []
    cursor = None
    while True:
        params = {"limit": 50, "order": "desc", **({"cursor": cursor} if cursor else {})}
        page = events(seeded, **params)
        backwards += [e["position"] for e in page["events"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert backwards == list(range(newest, 0, -1))


def test_tickets_filtered_by_state_and_tag(seeded: Server) -> None:
    def tickets(**params: Any) -> list[str]:
        response = seeded.operator.get("/api/tickets", params=params)
        assert response.status_code == 200, response.text
        return [t["ncentralTicketId"] for t in response.json()["tickets"]]

    assert tickets() == ["11", "22"]
    assert tickets(state="closed") == ["22"]
    assert tickets(tag="site:A") == ["11"]
    assert tickets(tag="site:C") == []
    assert tickets(updated_since="2999-01-01T00:00:00Z") == []
    first = seeded.operator.get("/api/tickets", params={"limit": 1}).json()
    second = seeded.operator.get("/api/tickets", params={"cursor": first["next"]}).json()
    assert [t["ncentralTicketId"] for t in first["tickets"] + second["tickets"]] == ["11", "22"]
    bad = seeded.operator.get("/api/tickets", params={"state": "sleeping"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "state"
    bad = seeded.operator.get("/api/tickets", params={"tag": "no-colon"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "tag"


def test_one_ticket_now_and_as_of(seeded: Server) -> None:
    log = events(seeded, ticket="22")["events"]
    external = log[0]["response"]["body"]["externalTicketId"]
    now = seeded.operator.get(f"/api/tickets/{external}").json()
    assert now["state"] == "closed"
    assert now["customTags"] == {"site": "B"}
    assert {"externalTicketId", "ncentralTicketId", "title", "details", "createdAt"} <= set(now)
    created = log[0]["position"]
    at_create = seeded.operator.get(f"/api/tickets/{external}", params={"as_of": created})
    assert at_create.json()["state"] == "pending"
    by_time = seeded.operator.get(
        f"/api/tickets/{external}", params={"as_of": log[1]["recorded_at"]}
    )
    assert by_time.json()["state"] == "open"
    before = seeded.operator.get(f"/api/tickets/{external}", params={"as_of": created - 1})
    assert before.status_code == 404
    assert seeded.operator.get("/api/tickets/PSA-999999").status_code == 404
    listed = seeded.operator.get("/api/tickets", params={"as_of": created, "state": "pending"})
    assert [t["ncentralTicketId"] for t in listed.json()["tickets"]] == ["22"]
    far = seeded.operator.get(f"/api/tickets/{external}", params={"as_of": str(2**63 - 1)})
    assert far.json()["state"] == "closed"
    bad = seeded.operator.get(f"/api/tickets/{external}", params={"as_of": "soon"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "as_of"


def _cursor(text: str) -> str:
    """A cursor shaped like ours (base64url, unpadded) around any text."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


#: Numbers and cursors that are not ASCII digits of bounded length. Each was a 500, or
#: (the Arabic-Indic digits, the underscore) was quietly read as another number.
_NOT_NUMBERS = [
    ("/api/events", "limit", "²"),
    ("/api/events", "limit", "9" * 5000),
    ("/api/events", "limit", "\N{ARABIC-INDIC DIGIT ONE}\N{ARABIC-INDIC DIGIT ZERO}"),
    ("/api/events", "cursor", "é"),
    ("/api/events", "cursor", _cursor("asc:\N{ARABIC-INDIC DIGIT ONE}")),
    ("/api/events", "cursor", _cursor("asc:1_0")),
    ("/api/events", "cursor", _cursor("asc:" + "9" * 5000)),
    ("/api/tickets", "limit", "²"),
    ("/api/tickets", "limit", "9" * 5000),
    ("/api/tickets", "as_of", "²"),
    ("/api/tickets", "as_of", "³"),
    ("/api/tickets", "as_of", "9" * 5000),
    ("/api/tickets", "as_of", "\N{ARABIC-INDIC DIGIT ONE}"),
    ("/api/tickets", "cursor", "é"),
    ("/api/tickets", "cursor", "ticket-é"),
    ("/api/tickets/{ticket}", "as_of", "²"),
    ("/api/tickets/{ticket}", "as_of", "³"),
    ("/api/tickets/{ticket}", "as_of", "9" * 5000),
    ("/api/tickets/{ticket}", "as_of", "9" * 40),
    ("/api/tickets/{ticket}", "as_of", "\N{ARABIC-INDIC DIGIT ONE}"),
]


@pytest.mark.parametrize(
    ("route", "parameter", "value"),
    _NOT_NUMBERS,
    ids=[
        f"{route} {name}={value if len(value) < 12 else f'{len(value)} chars'}"
        for route, name, value in _NOT_NUMBERS
    ],
)
def test_numbers_and_cursors_are_ascii_digits_of_bounded_length(
    seeded: Server, route: str, parameter: str, value: str
) -> None:
    external = events(seeded, ticket="22")["events"][0]["response"]["body"]["externalTicketId"]
    path = route.format(ticket=external)

    response = seeded.operator.get(path, params={parameter: value})

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["parameter"] == parameter
    assert len(problem["detail"]) < 200, "a 5,000-digit value is not echoed whole"


@pytest.mark.parametrize(
    ("method", "path", "params", "status"),
    [
        ("GET", "/api/events", {"ticket": "11\x00"}, 200),
        ("GET", "/api/events", {"actor": "\x00"}, 200),
        ("GET", "/review/events.jsonl", {"ticket": "\x00"}, 200),
        ("GET", "/", {"ncentral": "11\x00"}, 200),
        ("GET", "/api/tickets/PSA-1%00", {}, 404),
        ("GET", "/tickets/PSA-1%00", {}, 404),
        ("GET", "/api/callbacks/11%00", {}, 404),
        ("POST", "/api/callbacks/11%00/retry", {}, 404),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_nul_in_an_id_or_a_filter_names_nothing(
    seeded: Server, method: str, path: str, params: dict[str, str], status: int
) -> None:
    """PostgreSQL text holds no NUL and psycopg refuses to send one: such a read was a 500
    there (an empty page, or a 404, on SQLite). Now both answer alike: nothing matches."""
    response = seeded.operator.request(method, path, params=params, json={})
    assert response.status_code == status, response.text
    if path.startswith("/api/events"):
        assert response.json()["events"] == []
    if path == "/review/events.jsonl":
        assert response.text == ""

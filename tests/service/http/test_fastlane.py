"""The ticketing route's two lanes answer and record alike, on a real server.

A request that announces its length takes the fast lane (service.http.fastlane); one sent
chunked, without a length, goes through Litestar's handler. Neither N-central nor the
log can tell them apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import msgspec

from tests.support.harness import Server
from tests.support.live import NCENTRAL, read


def body(action: str, ticket: str, **extra: Any) -> bytes:
    return msgspec.json.encode({"action": action, "ncentralTicketId": ticket, **extra})


def chunked(content: bytes) -> Iterator[bytes]:
    yield content[:10]
    yield content[10:]


def put(server: Server, content: bytes, *, sized: bool, request_id: str) -> httpx.Response:
    sent = content if sized else chunked(content)
    response = server.ncentral.put(
        "/ncentral/tickets", content=sent, headers={"X-Request-Id": request_id}
    )
    assert ("content-length" in response.request.headers) is sized
    return response


def recorded(server: Server, request_id: str) -> list[tuple[Any, ...]]:
    rows = read(
        server.db,
        "SELECT ticket_id, action, outcome, actor FROM events WHERE request_id = ?"
        " ORDER BY position",
        (request_id,),
    )
    return [tuple(row.values()) for row in rows]


def test_sized_and_chunked_requests_get_the_same_answers_and_events(server: Server) -> None:
    for lane, sized in (("sized", True), ("chunked", False)):
        ticket = "501" if sized else "502"
        create = body("CREATE", ticket, title="t", details="d")
        created = put(server, create, sized=sized, request_id=lane)
        assert created.status_code == 200
        assert created.json()["ticketUrl"].endswith(created.json()["externalTicketId"])
        assert created.headers["content-type"] == "application/json"
        assert created.headers["x-request-id"] == lane
        assert created.headers["cache-control"] == "no-store"
        assert recorded(server, lane) == [
            (ticket, "CREATE", "accepted", NCENTRAL[0]),
            (ticket, "identity_delivered", "recorded", "psa-ledger"),
        ]
        refused = put(server, body("REOPEN", ticket), sized=sized, request_id=f"{lane}-2")
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert (refused.json()["state"], refused.json()["action"]) == ("open", "REOPEN")
        assert recorded(server, f"{lane}-2") == [(ticket, "REOPEN", "rejected", NCENTRAL[0])]
        garbled = put(server, b"{not json, not at all", sized=sized, request_id=f"{lane}-3")
        assert garbled.status_code == 400
        assert recorded(server, f"{lane}-3") == [(None, "invalid_request", "invalid", NCENTRAL[0])]


def test_a_wrong_password_is_refused_in_either_lane(server: Server) -> None:
    wrong = httpx.BasicAuth(NCENTRAL[0], "not-the-password-at-all")
    for content in (body("CREATE", "503", title="t", details="d"), chunked(b'{"a": 1} padding')):
        response = httpx.put(f"{server.url}/ncentral/tickets", content=content, auth=wrong)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="psa-ledger"'
        assert response.headers["content-type"] == "application/problem+json"

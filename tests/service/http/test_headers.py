"""Every answer of a real server carries the security headers, and no page loads a script."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.harness import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ticket_page(server: Server) -> str:
    server.send(action="CREATE", ncentralTicketId="8001", title="<b>disk</b>", details="full")
    return "/tickets/PSA-1"


def test_the_ticket_page_may_not_be_framed_or_sniffed_or_kept(
    server: Server, ticket_page: str
) -> None:
    page = server.operator.get(ticket_page)

    assert page.status_code == 200
    assert page.headers["x-content-type-options"] == "nosniff"
    policy = _policy(page)
    assert policy["frame-ancestors"] == "'none'"
    assert policy["default-src"] == "'none'"
    assert "script-src" not in policy, "no script may run, from anywhere"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text


@pytest.mark.parametrize(
    "path", ["/api/events", "/api/tickets", "/api/tickets/PSA-1", "/api/callbacks", "/api/nope"]
)
def test_api_answers_are_never_cached(server: Server, ticket_page: str, path: str) -> None:
    answer = server.operator.get(path)

    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert _policy(answer)["frame-ancestors"] == "'none'"


def test_refusals_carry_the_headers_too(server: Server) -> None:
    unauthenticated = httpx.get(f"{server.url}/api/events")
    unknown = server.operator.get("/no/such/route")
    wrong_method = server.operator.delete("/api/events")

    for answer in (unauthenticated, unknown, wrong_method):
        assert answer.status_code in (401, 404, 405)
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/tickets/PSA-1", "/metrics"])
def test_text_answers_name_their_charset_once(server: Server, ticket_page: str, path: str) -> None:
    content_type = server.operator.get(path).headers["content-type"]

    assert content_type.startswith("text/")
    assert content_type.count("charset") == 1, content_type


def test_the_schema_loads_nothing_from_elsewhere_and_its_document_stays(server: Server) -> None:
    root = httpx.get(f"{server.url}/schema")
    document = httpx.get(f"{server.url}/schema/openapi.json")

    assert root.status_code == 200
    assert not re.search(r"<script|https?://cdn|jsdelivr|unpkg|redoc\.ly", root.text)
    assert "text/html" not in root.headers["content-type"]
    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.")
    for viewer in ("swagger", "redoc", "elements", "rapidoc", "scalar"):
        assert httpx.get(f"{server.url}/schema/{viewer}").status_code == 404


def _policy(answer: httpx.Response) -> dict[str, str]:
    directives = answer.headers["content-security-policy"].split(";")
    return dict(d.strip().partition(" ")[::2] for d in directives if d.strip())

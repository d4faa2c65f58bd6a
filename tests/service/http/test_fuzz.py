"""No input, however malformed, gets a 500 or a traceback; each one is in the log, the log
still verifies, and every reader can read what it stored.

Beyond random JSON, the bodies include what an attacker would try (issue 7): nesting far
past any parser's stack, invalid UTF-8 and lone surrogates inside strings, numbers no
decoder can hold, digits from other scripts in `ncentralTicketId`, NUL in keys.
"""

from __future__ import annotations

import json
import re
from contextlib import closing
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from service.audit.verify import verify
from service.http.app import create_app
from service.settings import Settings
from service.storage.backend import backend_for
from tests.conftest import CREDENTIALS, NCENTRAL, OPERATOR, basic
from tests.support.fuzzing import examples
from tests.support.live import read

AUTH = basic(NCENTRAL)
#: What N-central sends as a ticket ID: an integer, written in ASCII digits.
N_CENTRAL_ID = re.compile(r"0|[1-9][0-9]*")
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
#: Short keys around a NUL: they collide as soon as anything cuts a string at its first NUL.
nul_keys = st.builds(
    lambda head, tail: f"{head}\x00{tail}", st.text(max_size=1), st.text(max_size=2)
)
tags = st.dictionaries(st.text(max_size=5) | nul_keys, st.text(max_size=5) | nul_keys)
foreign_digits = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=6)
ticket_ids = (
    st.sampled_from(["1", "2", "TEST_NC_TICKET_ID_1", "", "01", "1\x00"])
    | st.integers(0, 5).map(str)
    | foreign_digits
    | scalars
)
near_requests = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["CREATE", "update", "Close", "REOPEN", "", "DROP"]) | scalars,
        "ncentralTicketId": ticket_ids,
        "title": scalars,
        "details": scalars,
        "psaTicketNumber": scalars,
        "customTags": tags | json_values,
    },
)
valid_creates = st.fixed_dictionaries(
    {
        "action": st.just("CREATE"),
        "ncentralTicketId": st.integers(1, 5).map(str) | foreign_digits | st.just("01"),
        "title": st.text(),
        "details": st.text(),
    },
    optional={"customTags": tags},
)


def nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"0" + b"}" * depth


deep = st.builds(nested, st.integers(1, 12_000), st.sampled_from(["array", "object"]))
bad_utf8 = st.sampled_from(
    [
        b"\xff",
        b"\x80",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xed\xbf\xbf",
        b"\xe2\x82",
        b"\xf4\x90\x80\x80",
    ]
)
lone_surrogates = st.sampled_from(["\\ud800", "\\udfff", "\\udbff\\u0041", "\\udc00\\ud800"])
huge_numbers = st.integers(300, 6000).map(lambda n: b"9" * n) | st.sampled_from(
    [b"1e999", b"-1.5e400", b"1e-99999", b"18446744073709551616", b"-0"]
)
raw_strings = st.builds(
    lambda head, bad, tail: b'"' + head.encode() + bad + tail.encode() + b'"',
    st.text(max_size=3),
    bad_utf8 | lone_surrogates.map(str.encode),
    st.text(max_size=3),
)
raw_values = deep | raw_strings | huge_numbers
fields = st.sampled_from(["action", "ncentralTicketId", "title", "details", "customTags", "extra"])


def with_raw(body: dict[str, Any], key: bytes, raw: bytes) -> bytes:
    """`body` as JSON with one more key (given as bytes) whose value is raw JSON bytes."""
    head = json.dumps(body).encode()[:-1]
    return head + (b"," if body else b"") + b'"' + key + b'":' + raw + b"}"


hostile = (
    deep
    | st.builds(with_raw, near_requests | valid_creates, fields.map(str.encode), raw_values)
    | st.builds(with_raw, valid_creates, raw_strings.map(lambda s: s[1:-1]), st.just(b"1"))
)
bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | near_requests.map(lambda v: json.dumps(v).encode())
    | valid_creates.map(lambda v: json.dumps(v).encode())
    | hostile
)


@pytest.mark.hypothesis
def test_arbitrary_bodies_never_get_a_500(log_db: Path | str) -> None:
    """On both backends: PostgreSQL text holds no NUL, so it is shielded and restored."""
    db = log_db
    sent = 0
    with TestClient(create_app(Settings(db=str(db)), CREDENTIALS)) as client:

        @settings(
            max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow]
        )
        @given(body=bodies, method=st.sampled_from(["PUT", "POST"]))
        def send(body: bytes, method: str) -> None:
            nonlocal sent
            response = client.request(method, "/ncentral/tickets", content=body, headers=AUTH)
            sent += 1
            assert response.status_code in {200, 202, 400, 404, 409, 413, 422}, response.text
            if response.status_code >= 400:
                assert response.headers["content-type"].startswith("application/problem+json")
                assert "Traceback" not in response.text

        send()
        payloads = read_every_payload(client)
    assert len(payloads) >= sent >= 100, "hypothesis sent what it was asked to"
    assert all(isinstance(payload, dict) for payload in payloads), "the API reads each as an object"
    [logged] = read(db, "SELECT COUNT(*) AS n FROM events WHERE action != 'identity_delivered'")
    assert logged["n"] == sent
    assert tags_table(db) == tags_of_tickets(db)
    ticket_ids = [row["ncentral_ticket_id"] for row in read(db, "SELECT * FROM tickets")]
    assert all(N_CENTRAL_ID.fullmatch(tid) for tid in ticket_ids), "only N-central's IDs"
    backend = backend_for(db)
    with closing(backend.connect_sync()) as reader, backend.snapshot(reader):
        report = verify(reader)
    assert report.ok, report.findings


def read_every_payload(client: TestClient) -> list[Any]:
    """Every event's payload as `GET /api/events` hands it out, page by page."""
    payloads: list[Any] = []
    params: dict[str, str] = {"limit": "1000"}
    while True:
        page = client.get("/api/events", params=params, headers=basic(OPERATOR))
        assert page.status_code == 200, page.text
        payloads += [event["payload"] for event in page.json()["events"]]
        if page.json()["next"] is None:
            return payloads
        params["cursor"] = page.json()["next"]


def tags_table(db: Path | str) -> set[tuple[str, str, str]]:
    """The tag index as stored (on PostgreSQL, NUL shielded as in `tickets`)."""
    rows = read(db, "SELECT ncentral_ticket_id, key, value FROM ticket_tags")
    return {(row["ncentral_ticket_id"], row["key"], row["value"]) for row in rows}


def tags_of_tickets(db: Path | str) -> set[tuple[str, str, str]]:
    return {
        (row["ncentral_ticket_id"], key, value)
        for row in read(db, "SELECT ncentral_ticket_id, custom_tags FROM tickets")
        for key, value in msgspec.json.decode(row["custom_tags"]).items()
    }


def test_other_methods_and_paths_answer_problems(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(db=tmp_path / "x.db"), CREDENTIALS)) as client:
        wrong_method = client.get("/ncentral/tickets", headers=AUTH)
        assert wrong_method.status_code == 405
        assert wrong_method.headers["content-type"].startswith("application/problem+json")
        nowhere = client.get("/nowhere")
        assert nowhere.status_code == 404
        assert nowhere.headers["content-type"].startswith("application/problem+json")

"""No input, however malformed, gets a 500 or a traceback; each one is in the log."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from service.http.app import create_app
from service.settings import Settings
from tests.conftest import CREDENTIALS, NCENTRAL, basic

AUTH = basic(NCENTRAL)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
near_requests = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["CREATE", "update", "Close", "REOPEN", "", "DROP"]) | scalars,
        "ncentralTicketId": st.sampled_from(["1", "2", "TEST_NC_TICKET_ID_1", ""]) | scalars,
        "title": scalars,
        "details": scalars,
        "psaTicketNumber": scalars,
        "customTags": json_values,
    },
)
bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | near_requests.map(lambda v: json.dumps(v).encode())
)


def test_arbitrary_bodies_never_get_a_500(tmp_path: Path) -> None:
    db = tmp_path / "fuzz.db"
    sent = 0
    with TestClient(create_app(Settings(db=db), CREDENTIALS)) as client:

        @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
    with sqlite3.connect(db) as conn:
        logged = conn.execute(
            "SELECT COUNT(*) FROM events WHERE action != 'identity_delivered'"
        ).fetchone()[0]
        assert logged == sent
        assert (
            conn.execute(
                "SELECT COUNT(*) FROM events WHERE json_valid(payload) = 0"
                " OR json_type(payload) != 'object'"
            ).fetchone()[0]
            == 0
        )


def test_other_methods_and_paths_answer_problems(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(db=tmp_path / "x.db"), CREDENTIALS)) as client:
        wrong_method = client.get("/ncentral/tickets", headers=AUTH)
        assert wrong_method.status_code == 405
        assert wrong_method.headers["content-type"].startswith("application/problem+json")
        nowhere = client.get("/nowhere")
        assert nowhere.status_code == 404
        assert nowhere.headers["content-type"].startswith("application/problem+json")

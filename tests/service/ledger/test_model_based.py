"""Random action sequences through the HTTP app, checked against a small reference model.

The model below is written from CONTRACT §3 directly, not from the Machine, so that a
mistake in one shows up as a disagreement with the other.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from litestar.testing import TestClient

from service.http.app import create_app
from service.settings import Settings
from tests.conftest import CREDENTIALS, NCENTRAL, basic
from tests.support.fuzzing import examples
from tests.support.live import Log, read

AUTH = basic(NCENTRAL)
ACTIONS = ["CREATE", "UPDATE", "RESOLVE", "REOPEN", "CLOSE"]
# The model: state -> action -> state after, or None for 409. Unknown tickets: 404.
# In sync mode a CREATE opens the ticket at once (200); in async mode it stays pending (202)
# until N-central acknowledges a callback, which never happens here.
MODEL = {
    "pending": {"UPDATE": "pending", "RESOLVE": "closed", "REOPEN": None},
    "open": {"UPDATE": "open", "RESOLVE": "closed", "REOPEN": None},
    "closed": {"UPDATE": None, "RESOLVE": None, "REOPEN": "reopened"},
    "reopened": {"UPDATE": "reopened", "RESOLVE": "closed", "REOPEN": None},
}
#: From 1, so that ticket IDs are N-central's: digits with no leading zero.
_runs = itertools.count(1)


class TicketTraffic(RuleBasedStateMachine):
    """Each example gets fresh ticket IDs on one long-lived app and DB file."""

    client: TestClient
    db: Path | str
    mode: str

    @initialize()
    def start(self) -> None:
        self.run = next(_runs)
        # ticket -> (state, (action, body, status) of its last accepted request)
        self.tickets: dict[str, tuple[str, tuple[str, bytes, int]]] = {}

    @rule(
        ticket=st.integers(0, 3),
        action=st.sampled_from(ACTIONS),
        note=st.sampled_from(["", "a", "b"]),
    )
    def send(self, ticket: int, action: str, note: str) -> None:
        ticket_id = f"{self.run}{ticket:02d}"
        body = {
            "action": action,
            "ncentralTicketId": ticket_id,
            "title": f"T{ticket}",
            "details": note,
        }
        raw = json.dumps(body).encode()
        response = self.client.put("/ncentral/tickets", content=raw, headers=AUTH)
        expected_status, after = self.expect(ticket_id, action, raw)
        assert response.status_code == expected_status, (action, response.text)
        if after is not None:
            self.tickets[ticket_id] = after

    def expect(self, ticket_id: str, action: str, raw: bytes):
        action = "RESOLVE" if action == "CLOSE" else action
        known = self.tickets.get(ticket_id)
        if known is None:
            if action != "CREATE":
                return 404, None
            state, status = ("open", 200) if self.mode == "sync" else ("pending", 202)
            return status, (state, (action, raw, status))
        state, last = known
        if last[:2] == (action, raw):
            return last[2], None
        if action == "CREATE":
            return 200, None
        after = MODEL[state][action]
        return (409, None) if after is None else (200, (after, (action, raw, 200)))

    @invariant()
    def states_match_the_model(self) -> None:
        rows = read(
            self.db,
            "SELECT ncentral_ticket_id, state FROM tickets WHERE ncentral_ticket_id LIKE ?",
            (f"{self.run}__",),
        )
        stored = {row["ncentral_ticket_id"]: row["state"] for row in rows}
        assert stored == {tid: known[0] for tid, known in self.tickets.items()}


@pytest.mark.hypothesis
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_random_traffic_agrees_with_the_reference_model(log_db: Path | str, mode: str) -> None:
    settings = Settings(
        db=str(log_db),
        create_mode=mode,  # type: ignore[arg-type]
        # Nothing listens on port 9: every callback fails, so tickets stay pending.
        ncentral_url="http://127.0.0.1:9" if mode == "async" else None,
        ncentral_username="nc",
        ncentral_password="nc",
    )
    with TestClient(create_app(settings, CREDENTIALS)) as client:
        TicketTraffic.client = client
        TicketTraffic.db = settings.db
        TicketTraffic.mode = mode
        run = TicketTraffic.TestCase
        run.settings = hypothesis_settings(
            max_examples=examples(40), stateful_step_count=25, deadline=None
        )
        run().runTest()
    assert Log(settings.db).replay_problems() == []

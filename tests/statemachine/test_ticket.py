"""Every cell of CONTRACT §3's state table, on the domain alone."""

import pytest

from statemachine.events import Action, Outcome, TicketRequest, digest
from statemachine.projection import LastAccepted, Standing, decide
from statemachine.ticket import MACHINE, State, Trigger, allowed_triggers, next_state

# (state, action) -> (outcome, state after); "new" means no ticket exists yet.
CONTRACT = {
    ("new", "CREATE"): ("accepted", "pending"),
    ("new", "UPDATE"): ("not_found", "new"),
    ("new", "RESOLVE"): ("not_found", "new"),
    ("new", "REOPEN"): ("not_found", "new"),
    ("pending", "CREATE"): ("existing", "pending"),
    ("pending", "UPDATE"): ("accepted", "pending"),
    ("pending", "RESOLVE"): ("accepted", "closed"),
    ("pending", "REOPEN"): ("rejected", "pending"),
    ("open", "CREATE"): ("existing", "open"),
    ("open", "UPDATE"): ("accepted", "open"),
    ("open", "RESOLVE"): ("accepted", "closed"),
    ("open", "REOPEN"): ("rejected", "open"),
    ("closed", "CREATE"): ("existing", "closed"),
    ("closed", "UPDATE"): ("rejected", "closed"),
    ("closed", "RESOLVE"): ("rejected", "closed"),
    ("closed", "REOPEN"): ("accepted", "reopened"),
    ("reopened", "CREATE"): ("existing", "reopened"),
    ("reopened", "UPDATE"): ("accepted", "reopened"),
    ("reopened", "RESOLVE"): ("accepted", "closed"),
    ("reopened", "REOPEN"): ("rejected", "reopened"),
}


def ticket_in(state: str, last: LastAccepted | None = None) -> Standing:
    return Standing(
        ncentral_ticket_id="42",
        external_ticket_id="PSA-1",
        state=State(state),
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        last_accepted=last,
    )


def request(action: str, **fields: str) -> TicketRequest:
    return TicketRequest(action=action, ncentral_ticket_id="42", title="t", details="d", **fields)


@pytest.mark.parametrize(("state", "action"), sorted(CONTRACT))
def test_every_cell_of_the_state_table(state: str, action: str) -> None:
    ticket = None if state == "new" else ticket_in(state)
    decision = decide(ticket, request(action), digest("{}"))
    assert (decision.outcome.value, decision.state_after.value) == CONTRACT[state, action]


def test_a_refusal_names_the_actions_the_state_allows() -> None:
    decision = decide(ticket_in("closed"), request("UPDATE"), digest("{}"))
    assert decision.allowed == (Action.CREATE, Action.REOPEN)


def test_resolve_retried_on_a_closed_ticket_is_a_duplicate_not_a_refusal() -> None:
    last = LastAccepted("RESOLVE", digest('{"a":1}'), '{"status":200}')
    decision = decide(ticket_in("closed", last), request("RESOLVE"), digest('{"a":1}'))
    assert decision.outcome is Outcome.DUPLICATE
    other_body = decide(ticket_in("closed", last), request("RESOLVE"), digest('{"a":2}'))
    assert other_body.outcome is Outcome.REJECTED


def test_a_wrong_psa_ticket_number_is_a_mismatch() -> None:
    decision = decide(ticket_in("open"), request("UPDATE", psa_ticket_number="PSA-9"), "x")
    assert decision.outcome is Outcome.MISMATCH
    right = decide(ticket_in("open"), request("UPDATE", psa_ticket_number="PSA-1"), "x")
    assert right.outcome is Outcome.ACCEPTED


def test_connection_test_creates_nothing_whatever_the_state() -> None:
    probe = TicketRequest(action="CREATE", ncentral_ticket_id="TEST_NC_TICKET_ID_77")
    assert decide(None, probe, "x").outcome is Outcome.CONNECTION_TEST


def test_delivery_opens_a_pending_ticket_and_leaves_others_alone() -> None:
    assert next_state(State.PENDING, Trigger.DELIVER) is State.OPEN
    for state in (State.OPEN, State.CLOSED, State.REOPENED):
        assert next_state(state, Trigger.DELIVER) is state


def test_the_table_is_read_from_the_machine_itself() -> None:
    for state in State:
        machine_triggers = {
            name for name, event in MACHINE.events.items() if state.value in event.transitions
        }
        assert {t.value for t in allowed_triggers(state)} == machine_triggers

"""`Projection` tells a retry from a new request as the writer does: by the digest of the
last accepted request, which replay keeps as text until it is asked for."""

from __future__ import annotations

import msgspec

from statemachine.events import Event, digest
from statemachine.projection import Projection


def request(action: str, details: str) -> str:
    body = {"action": action, "ncentralTicketId": "7", "title": "Disk", "details": details}
    return msgspec.json.encode(body).decode()


def event(position: int, action: str, outcome: str, payload: str, states: str) -> Event:
    before, after = states.split("->")
    return Event(
        position=position,
        ticket_id="7",
        stream_version=position,
        action=action,
        outcome=outcome,
        state_before=before,
        state_after=after,
        recorded_at=f"2026-01-01T00:00:0{position}.000000Z",
        request_id=f"r{position}",
        actor="ncentral",
        payload=payload,
        response=f"answer {position}",
    )


#: CREATE, an UPDATE, its retry, another UPDATE, its retry, then the first UPDATE again.
LOG = [
    event(1, "CREATE", "accepted", request("CREATE", "full"), "new->pending"),
    event(2, "UPDATE", "accepted", request("UPDATE", "90%"), "pending->pending"),
    event(3, "UPDATE", "duplicate", request("UPDATE", "90%"), "pending->pending"),
    event(4, "UPDATE", "accepted", request("UPDATE", "95%"), "pending->pending"),
    event(5, "UPDATE", "duplicate", request("UPDATE", "95%"), "pending->pending"),
    event(6, "UPDATE", "accepted", request("UPDATE", "90%"), "pending->pending"),
]


def test_a_retry_is_a_duplicate_and_the_same_text_later_is_not() -> None:
    projection = Projection()
    assert [projection.apply(e) for e in LOG] == [[]] * len(LOG)
    (ticket,) = projection.tickets().values()
    assert ticket.last_accepted is not None
    assert ticket.last_accepted.digest == digest(LOG[-1].payload)
    assert ticket.last_accepted.response == "answer 6"
    standing = projection.streams["7"].ticket
    assert standing is not None and standing.last_accepted == ticket.last_accepted


def test_outcomes_the_rules_do_not_derive_are_found_digested_or_not() -> None:
    """A retry recorded as accepted, and a new request recorded as a duplicate, whether
    the last accepted request was digested in between (`streams` read) or not."""
    for read_between in (False, True):
        projection = Projection()
        lies = [
            *LOG[:2],
            msgspec.structs.replace(LOG[2], outcome="accepted"),
            msgspec.structs.replace(LOG[3], outcome="duplicate"),
        ]
        found = []
        for e in lies:
            found.append(projection.apply(e))
            if read_between:
                assert projection.streams
        assert [bool(problems) for problems in found] == [False, False, True, True]
        ticket = projection.streams["7"].ticket
        assert ticket is not None and ticket.last_accepted is not None
        # The lie at 3 is folded as the rules derive it (a duplicate), and so is 4's.
        assert ticket.last_accepted.digest == digest(LOG[3].payload)

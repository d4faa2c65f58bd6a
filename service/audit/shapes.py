"""The shapes events and tickets take outside: in the API, the CLI's JSON and exports.

One definition for every reader, so `psa-ledger events --format json` and
`GET /api/events` describe an event the same way. Payloads and answers are stored as JSON
text; here they become objects, because an auditor filters on their fields.
"""

from __future__ import annotations

from typing import Any

import msgspec

from statemachine.events import Event
from statemachine.projection import Ticket, allowed_actions

__all__ = ["EventView", "TicketView", "event_view", "ticket_view"]


class EventView(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    ticket_id: str | None
    stream_version: int | None
    action: str
    outcome: str
    state_before: str | None
    state_after: str | None
    recorded_at: str
    request_id: str | None
    actor: str
    payload: Any
    response: Any
    schema_version: int
    prev_hash: str
    hash: str


class TicketView(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    external_ticket_id: str
    ncentral_ticket_id: str
    state: str
    title: str
    details: str
    custom_tags: dict[str, str]
    created_at: str
    updated_at: str
    allowed_actions: list[str]
    ticket_url: str | None = None
    #: Set when the ticket was replayed to a moment: the last log position taken into account.
    as_of_position: int | None = None


def event_view(event: Event) -> EventView:
    """The row as stored, with its JSON columns as objects rather than text."""
    fields = msgspec.structs.asdict(event)
    fields["payload"] = _json(event.payload)
    fields["response"] = _json(event.response)
    return EventView(**fields)


def ticket_view(
    ticket: Ticket, *, base_url: str | None = None, as_of_position: int | None = None
) -> TicketView:
    return TicketView(
        external_ticket_id=ticket.external_ticket_id,
        ncentral_ticket_id=ticket.ncentral_ticket_id,
        state=ticket.state.value,
        title=ticket.title,
        details=ticket.details,
        custom_tags=ticket.custom_tags,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        allowed_actions=[a.value for a in allowed_actions(ticket.state)],
        ticket_url=f"{base_url}/tickets/{ticket.external_ticket_id}" if base_url else None,
        as_of_position=as_of_position,
    )


def _json(text: str | None) -> Any:
    """Stored JSON as an object; text that is not JSON (a damaged row) stays visible as text."""
    if text is None:
        return None
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text

"""Rows to domain values and back, by column name.

`events` rows are `Event`s field for field; a `tickets` row is the `Stream` it projects,
with its tags and last accepted request as JSON text.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from statemachine.events import Event
from statemachine.projection import LastAccepted, Stream, Ticket
from statemachine.ticket import State

__all__ = [
    "EVENT_COLUMNS",
    "TICKET_COLUMNS",
    "Row",
    "event_from_row",
    "event_row",
    "stream_from_row",
    "ticket_row",
]

EVENT_COLUMNS: tuple[str, ...] = Event.__struct_fields__
TICKET_COLUMNS = (
    "ncentral_ticket_id",
    "external_ticket_id",
    "state",
    "title",
    "details",
    "custom_tags",
    "created_at",
    "updated_at",
    "stream_version",
    "last_position",
    "last_accepted",
)


class Row(Protocol):
    """A row read by column name (`sqlite3.Row`, or a dict)."""

    def __getitem__(self, column: str, /) -> Any: ...


def event_row(event: Event) -> tuple[Any, ...]:
    """The values of an `events` row, in `EVENT_COLUMNS` order."""
    return tuple(getattr(event, name) for name in EVENT_COLUMNS)


def event_from_row(row: Row) -> Event:
    return Event(**{name: row[name] for name in EVENT_COLUMNS})


def ticket_row(ticket_id: str, stream: Stream, position: int) -> tuple[Any, ...]:
    """The values of a `tickets` row, in `TICKET_COLUMNS` order."""
    ticket = stream.ticket
    assert ticket is not None
    return (
        ticket_id,
        ticket.external_ticket_id,
        ticket.state.value,
        ticket.title,
        ticket.details,
        _encode(ticket.custom_tags),
        ticket.created_at,
        ticket.updated_at,
        stream.version,
        position,
        _encode(ticket.last_accepted) if ticket.last_accepted else None,
    )


def stream_from_row(row: Row) -> Stream:
    """A `tickets` row back into the stream it projects."""
    last = row["last_accepted"]
    ticket = Ticket(
        ncentral_ticket_id=row["ncentral_ticket_id"],
        external_ticket_id=row["external_ticket_id"],
        state=State(row["state"]),
        title=row["title"],
        details=row["details"],
        custom_tags=msgspec.json.decode(row["custom_tags"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_accepted=msgspec.json.decode(last, type=LastAccepted) if last else None,
    )
    return Stream(row["stream_version"], ticket)


_encode = msgspec.json.encode

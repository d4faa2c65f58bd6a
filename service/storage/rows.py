"""Rows to domain values and back, by column name.

`events` rows are `Event`s field for field; a `tickets` row is the `Stream` it projects,
with its tags and last accepted request as JSON text.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from statemachine.events import Event
from statemachine.projection import LastAccepted, Standing, Stream, Ticket
from statemachine.ticket import State

__all__ = [
    "EVENT_COLUMNS",
    "TICKET_COLUMNS",
    "Row",
    "event_from_row",
    "event_from_values",
    "event_row",
    "stream_from_row",
    "ticket_from_row",
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
#: What the writer reads back of a ticket: everything but N-central's text.
STREAM_COLUMNS = (
    "ncentral_ticket_id",
    "external_ticket_id",
    "state",
    "created_at",
    "updated_at",
    "stream_version",
    "last_accepted",
)


class Row(Protocol):
    """A row read by column name (`sqlite3.Row`, or a dict)."""

    def __getitem__(self, column: str, /) -> Any: ...


def event_row(event: Event) -> tuple[Any, ...]:
    """The values of an `events` row, in `EVENT_COLUMNS` order (the Struct's own)."""
    return msgspec.structs.astuple(event)


def event_from_row(row: Row) -> Event:
    return Event(**{name: row[name] for name in EVENT_COLUMNS})


def event_from_values(values: tuple[Any, ...]) -> Event:
    """An `events` row read as a plain tuple in `EVENT_COLUMNS` order: the fast way to
    read the whole log, with no mapping built per row."""
    return Event(
        position=values[0],
        ticket_id=values[1],
        stream_version=values[2],
        action=values[3],
        outcome=values[4],
        state_before=values[5],
        state_after=values[6],
        recorded_at=values[7],
        request_id=values[8],
        actor=values[9],
        payload=values[10],
        response=values[11],
        schema_version=values[12],
        prev_hash=values[13],
        hash=values[14],
    )


def ticket_row(ticket_id: str, stream: Stream, position: int) -> tuple[Any, ...]:
    """The `tickets` row of a stream, in `TICKET_COLUMNS` order, for `UPSERT_TICKET`.

    Content the stream does not hold is None, and `UPSERT_TICKET` keeps the stored value.
    """
    ticket, content = stream.ticket, stream.content
    assert ticket is not None
    return (
        ticket_id,
        ticket.external_ticket_id,
        ticket.state.value,
        content.title,
        content.details,
        _encode(content.custom_tags) if content.custom_tags is not None else None,
        ticket.created_at,
        ticket.updated_at,
        stream.version,
        position,
        _encode(ticket.last_accepted) if ticket.last_accepted else None,
    )


def ticket_from_row(row: Row) -> Ticket:
    """A `tickets` row as readers see the ticket."""
    return Ticket(
        ncentral_ticket_id=row["ncentral_ticket_id"],
        external_ticket_id=row["external_ticket_id"],
        state=State(row["state"]),
        title=row["title"],
        details=row["details"],
        custom_tags=msgspec.json.decode(row["custom_tags"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_accepted=_last_accepted(row["last_accepted"]),
    )


def stream_from_row(row: Row) -> Stream:
    """A `tickets` row read in `STREAM_COLUMNS` order: the stream without its content."""
    standing = Standing(
        ncentral_ticket_id=row["ncentral_ticket_id"],
        external_ticket_id=row["external_ticket_id"],
        state=State(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_accepted=_last_accepted(row["last_accepted"]),
    )
    return Stream(row["stream_version"], standing)


def _last_accepted(text: str | None) -> LastAccepted | None:
    return msgspec.json.decode(text, type=LastAccepted) if text else None


_encode = msgspec.json.encode

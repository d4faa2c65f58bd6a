"""Time travel: the tickets at any moment, and the states around each event of a window.

Nothing here trusts the `tickets` table. Every ticket at a moment is the nearest sound
checkpoint before it plus a `Rewind` of the events that followed (from genesis when there
is none): the outcomes the log recorded, which `verify` proves, with every state taken
from the Machine's table. A delta checkpoint is sound when every link of its chain back
to a full one is; a checkpoint that is damaged (its digest does not match) or whose chain
is broken is passed over for an earlier one, so a bad or missing checkpoint costs time,
never truth. The checkpoint's records stay encoded until the fold or a reader needs them.
The incident timeline replays with the very `Projection` the live path uses.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator
from typing import Any

import msgspec

from service.audit.events import EventFilter, iter_matching
from service.storage import checkpoints
from service.storage import events as stored
from service.storage.checkpoints import Held
from statemachine.events import Event
from statemachine.projection import Projection, Record, Rewind, Ticket, gc_paused

__all__ = [
    "Change",
    "Step",
    "changes_between",
    "compare",
    "rewind",
    "state_at",
    "ticket_at",
    "timeline",
]


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One event of an incident timeline, with the ticket's state before and after it."""

    position: int
    recorded_at: str
    ticket_id: str | None
    external_ticket_id: str | None
    action: str
    outcome: str
    state_before: str | None
    state_after: str | None
    actor: str


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One field of one ticket that differs between two moments."""

    ticket_id: str
    external_ticket_id: str
    field: str
    before: str | None
    after: str | None


def state_at(db: sqlite3.Connection, position: int) -> dict[str, Ticket]:
    """Every ticket, by ncentralTicketId, as the first `position` events left them."""
    return rewind(db, position).tickets()


def rewind(db: sqlite3.Connection, position: int, *, from_genesis: bool = False) -> Rewind:
    """The fold of the log through `position`, from its nearest sound checkpoint.

    `from_genesis` ignores the checkpoints (what `bench.replay` compares them with).
    """
    with gc_paused():
        start = Rewind() if from_genesis else _nearest_checkpoint(db, position)
        start.fold(stored.rewind_rows(db, start.position, position), position)
    return start


def ticket_at(db: sqlite3.Connection, ticket_id: str, position: int) -> Ticket | None:
    """One ticket at `position`: its own stream is all its state depends on."""
    projection = Projection()
    for event in stored.ticket_events(db, ticket_id, position):
        projection.apply(event)
    return projection.tickets().get(ticket_id)


def timeline(
    db: sqlite3.Connection, start: int, end: int, *, ticket: str | None = None
) -> Iterator[Step]:
    """Events at positions `start`..`end`, each with the states replay derives around it."""
    projection = Projection()
    where = EventFilter(ticket=ticket)
    for event in iter_matching(db, where):
        if event.position > end:
            return
        before = _state_of(projection, event)
        projection.apply(event)
        if event.position >= start:
            yield _step(event, before, _state_of(projection, event), projection)


def changes_between(db: sqlite3.Connection, first: int, second: int) -> list[Change]:
    """What differs between the tickets at `first` and at `second` (first <= second).

    The second moment is reached from its own nearest checkpoint when one lies after the
    first, else by folding on from the first. Only tickets whose records differ are
    compared field by field.
    """
    then = rewind(db, first)
    if checkpoints.latest_position(db, second) > first:
        return compare(then.records, rewind(db, second).records)
    # The fold changes records in place: keep copies of the first moment's.
    before = {tid: msgspec.structs.replace(record) for tid, record in then.records.items()}
    then.fold(stored.rewind_rows(db, then.position, second), second)
    return compare(before, then.records)


_FIELDS = ("state", "title", "details", "custom_tags")


def _nearest_checkpoint(db: sqlite3.Connection, position: int) -> Rewind:
    """A `Rewind` from the nearest checkpoint whose chain back to a full one is sound, its
    records decoded as they are needed (all at once, if all are)."""
    for checkpoint in checkpoints.at_or_before(db, position):
        chain = _chain(db, checkpoint)
        if chain is not None:
            return Rewind(
                {},
                checkpoint.position,
                held=_laid_over([held.records for held in chain]),
                decode=checkpoints.record_of,
                decode_all=functools.partial(_decoded, chain),
            )
    return Rewind()


def _chain(db: sqlite3.Connection, checkpoint: checkpoints.Checkpoint) -> list[Held] | None:
    """What `checkpoint` and each link of its chain back to a full one hold, the full one
    first; None when a link is missing or damaged. Bases only go back, so the walk ends."""
    chain = []
    while True:
        held = checkpoints.raw_records_of(checkpoint)
        if held is None:
            return None
        chain.append(held)
        if held.base == 0:
            return chain[::-1]
        base = checkpoints.at(db, held.base)
        if base is None:
            return None
        checkpoint = base


def _laid_over(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """The first layer with each later one laid over it, in turn. The first is changed, not
    copied (a full checkpoint's hundred thousand entries): its callers have just decoded it."""
    merged = layers[0]
    for layer in layers[1:]:
        merged.update(layer)
    return merged


def _decoded(chain: list[Held]) -> dict[str, Record] | None:
    """Every record of a chain, each snapshot decoded in one call."""
    layers = [checkpoints.decode_records(held) for held in chain]
    if any(layer is None for layer in layers):
        return None
    return _laid_over([layer for layer in layers if layer is not None])


def _state_of(projection: Projection, event: Event) -> str | None:
    if event.ticket_id is None:
        return None
    stream = projection.streams.get(event.ticket_id)
    if stream is None or stream.ticket is None:
        return "new"
    return stream.ticket.state.value


def _step(event: Event, before: str | None, after: str | None, projection: Projection) -> Step:
    stream = projection.streams.get(event.ticket_id) if event.ticket_id else None
    ticket = stream.ticket if stream is not None else None
    return Step(
        position=event.position,
        recorded_at=event.recorded_at,
        ticket_id=event.ticket_id,
        external_ticket_id=ticket.external_ticket_id if ticket else None,
        action=event.action,
        outcome=event.outcome,
        state_before=before,
        state_after=after,
        actor=event.actor,
    )


def compare(then: dict[str, Record], now: dict[str, Record]) -> list[Change]:
    """Each field of each ticket that differs from `then` to `now`, by ncentralTicketId."""
    changed = sorted(tid for tid, record in now.items() if then.get(tid) != record)
    changes = []
    for ticket_id in changed:
        ticket, old = now[ticket_id], then.get(ticket_id)
        for field in _FIELDS:
            value = getattr(ticket, field)
            if old is not None and getattr(old, field) == value:
                continue  # equal values read as equal text: no text made for them
            before = _text(getattr(old, field)) if old is not None else None
            after = _text(value)
            if before != after:
                changes.append(
                    Change(
                        ticket_id=ticket_id,
                        external_ticket_id=ticket.external_ticket_id,
                        field=field,
                        before=before,
                        after=after,
                    )
                )
    return changes


def _text(value: object) -> str:
    if isinstance(value, dict):
        return msgspec.json.encode(dict(sorted(value.items()))).decode()
    return str(value)

"""From events to tickets: one fold, used by the live write path and by replay alike.

`decide` says what a request does to a ticket; `evolve` applies a recorded event to a
ticket's stream. The writer calls `decide`, records the event, then `evolve`s; `Projection`
replays a log through the very same two functions and reports any recorded outcome or
state that the rules would not derive again.

A stream keeps a ticket's `Standing` (what decisions need) apart from its `Content` (what
N-central wrote: title, details, tags), because content can be a megabyte a ticket and no
decision reads it. Replay holds both; the writer drops content once it is stored.

`Rewind` is time travel's fold: it trusts the outcomes the log recorded (which `verify`
derives again through `decide`) and takes every state from the Machine's table, as
`decide` does, but touches only a few columns a row and decodes a payload only where an
accepted request changes what the ticket shows. It can start from a checkpoint: the
`Record`s of every ticket at a position.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from statemachine.events import (
    Action,
    Event,
    Fact,
    InvalidRequest,
    Outcome,
    TicketRequest,
    digest,
    is_connection_test,
    parse_request,
)
from statemachine.ticket import State, Trigger, allowed_triggers, next_state

__all__ = [
    "Content",
    "Decision",
    "LastAccepted",
    "Projection",
    "Record",
    "Rewind",
    "RewindRow",
    "Standing",
    "Stream",
    "Ticket",
    "allowed_actions",
    "decide",
    "delivery",
    "evolve",
    "external_id_for",
    "gc_paused",
]

_TRIGGER_OF = {
    Action.CREATE: Trigger.CREATE,
    Action.UPDATE: Trigger.UPDATE,
    Action.RESOLVE: Trigger.RESOLVE,
    Action.REOPEN: Trigger.REOPEN,
}
_ACTION_OF = {trigger: action for action, trigger in _TRIGGER_OF.items()}
_DELIVERIES = {Fact.IDENTITY_DELIVERED.value, Fact.CALLBACK_DELIVERED.value}
_REQUEST_ACTIONS = {a.value for a in Action}


# gc=False: never in a reference cycle (see `statemachine.events.TicketRequest`).
class LastAccepted(msgspec.Struct, gc=False, frozen=True):
    """The ticket's last accepted request: a retry of it is answered as it was."""

    action: str
    digest: str
    response: str | None


class Ticket(msgspec.Struct, frozen=True, kw_only=True):
    """A ticket as readers see it: its standing and everything N-central wrote about it."""

    ncentral_ticket_id: str
    external_ticket_id: str
    state: State
    title: str
    details: str
    custom_tags: dict[str, str]
    created_at: str
    updated_at: str
    last_accepted: LastAccepted | None = None


class Standing(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """What decisions need about a ticket: identity, state, times, the last accepted request.

    Small whatever N-central sends (the request is kept as a digest), so the writer can hold
    one for every ticket it has seen.
    """

    ncentral_ticket_id: str
    external_ticket_id: str
    state: State
    created_at: str
    updated_at: str
    last_accepted: LastAccepted | None = None


class Content(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """What N-central wrote about a ticket; a field is None where this copy does not hold it.

    Replay holds all of it (it starts at the CREATE). The writer holds only what the
    requests of the batch in hand changed: the `tickets` table keeps the rest.
    """

    title: str | None = None
    details: str | None = None
    custom_tags: dict[str, str] | None = None


class Stream(msgspec.Struct, gc=False, frozen=True):
    """Everything recorded about one ncentralTicketId; `ticket` is None until a CREATE."""

    version: int = 0
    ticket: Standing | None = None
    content: Content = Content()

    def stored(self) -> Stream:
        """The stream once its content is in the `tickets` table: what the writer keeps."""
        return Stream(self.version, self.ticket)


class Decision(msgspec.Struct, gc=False, frozen=True):
    outcome: Outcome
    state_before: State | None = None
    state_after: State | None = None
    #: For a refusal: the actions the state would have accepted.
    allowed: tuple[Action, ...] = ()


def decide(ticket: Standing | None, request: TicketRequest, request_digest: str) -> Decision:
    """What `request` does to `ticket`, by the Machine's rules (its table, read once into
    `_DECISIONS`: a decision is a lookup, not an object built for each request)."""
    action = request.action
    if is_connection_test(request.ncentral_ticket_id):
        return _CONNECTION_TEST
    if ticket is None:
        return _CREATED if action == _CREATE else _NOT_FOUND
    before = ticket.state
    last = ticket.last_accepted
    if last is not None and last.action == action and last.digest == request_digest:
        return _DUPLICATE[before]
    if request.psa_ticket_number and request.psa_ticket_number != ticket.external_ticket_id:
        return _MISMATCH[before]
    return _DECISIONS[before, action]


def delivery(ticket: Standing) -> tuple[State, State]:
    """States before and after the ticket's identity reaches N-central."""
    return ticket.state, _DELIVERED[ticket.state]


def evolve(
    stream: Stream,
    event: Event,
    request: TicketRequest | None,
    request_digest: str | None = None,
) -> Stream:
    """The stream after `event`; `request` is the decoded payload of an N-central request
    (and `request_digest` its digest, when the caller has it already)."""
    ticket, content = stream.ticket, stream.content
    if request is not None and event.outcome == _ACCEPTED:
        content = _written(content if ticket is not None else None, request)
        ticket = _accepted(
            ticket,
            request,
            request_digest or digest(event.payload),
            _state(event.state_after or _PENDING),
            (event.position, event.recorded_at, event.response),
        )
    elif ticket is not None and event.action in _DELIVERIES:
        state = _state(event.state_after) if event.state_after else ticket.state
        ticket = msgspec.structs.replace(ticket, state=state, updated_at=event.recorded_at)
    return Stream(event.stream_version or stream.version, ticket, content)


def allowed_actions(state: State) -> tuple[Action, ...]:
    return _ALLOWED[state]


def external_id_for(position: int) -> str:
    """Our ticket number: the log position of the CREATE, so replay derives the same one."""
    return f"PSA-{position}"


#: Read from the Machine once: every refusal on replay names them.
_ALLOWED = {
    state: tuple(_ACTION_OF[t] for t in allowed_triggers(state) if t in _ACTION_OF)
    for state in State
}


def _decision(state: State, action: Action) -> Decision:
    """What `action` does to an existing ticket in `state`, by the Machine's table."""
    after = next_state(state, _TRIGGER_OF[action])
    if after is None:
        return Decision(Outcome.REJECTED, state, state, allowed_actions(state))
    if action is Action.CREATE:
        return Decision(Outcome.EXISTING, state, state)
    return Decision(Outcome.ACCEPTED, state, after)


#: Every decision `decide` can take, made once (Decisions are frozen, so they are shared).
#: Keyed by an action's text: a parsed request holds it as text.
_DECISIONS: dict[tuple[State, str], Decision] = {
    (state, action): _decision(state, action) for state in State for action in Action
}
_DUPLICATE = {state: Decision(Outcome.DUPLICATE, state, state) for state in State}
_MISMATCH = {state: Decision(Outcome.MISMATCH, state, state) for state in State}
_NOT_FOUND = Decision(Outcome.NOT_FOUND, State.NEW, State.NEW)
_CREATED = Decision(Outcome.ACCEPTED, State.NEW, next_state(State.NEW, Trigger.CREATE))
_CONNECTION_TEST = Decision(Outcome.CONNECTION_TEST)
_DELIVERED = {state: next_state(state, Trigger.DELIVER) or state for state in State}
_DELIVERY = {state: Decision(Outcome.RECORDED, state, _DELIVERED[state]) for state in State}
_CREATE = Action.CREATE
_INVALID = Decision(Outcome.INVALID)
_RECORDED = Outcome.RECORDED
_PENDING = State.PENDING
_ACCEPTED_OUTCOME = Outcome.ACCEPTED
#: Where a stored row holds the payload and the response (`Event` field order).
_PAYLOAD = Event.__struct_fields__.index("payload")
_RESPONSE = Event.__struct_fields__.index("response")


class Projection:
    """Replays events in order, checking each recorded outcome and state against the rules.

    A ticket's last accepted request is kept as its text until its digest is asked for
    (`streams`, `tickets`): only a repeat of the same action is compared with it, and
    texts compare as their digests do. So a replay hashes each ticket's last request
    once, not every request accepted: on the bench's million events, 120,000 SHA-256
    instead of 700,000.
    """

    def __init__(self) -> None:
        self._streams: dict[str, Stream] = {}
        #: By ticket, the text of its last accepted request while that is not digested.
        self._undigested: dict[str, str] = {}
        self.last_position = 0

    @property
    def streams(self) -> dict[str, Stream]:
        """Every ticket's stream, its last accepted request digested."""
        if self._undigested:
            self._digest_undigested()
        return self._streams

    def apply(self, event: Event) -> list[str]:
        """Fold one event in; returns what it recorded that the rules would not derive."""
        return self.apply_row(msgspec.structs.astuple(event))

    def apply_row(self, row: tuple[Any, ...]) -> list[str]:
        """`apply` for an event given as its values in `Event` field order (a stored row,
        as read): a replay of the whole log builds no `Event` a row."""
        position, ticket_id, version, action, outcome, before, after, recorded_at = row[:8]
        problems: list[str] = []
        if position <= self.last_position:
            problems.append(f"position {position} follows {self.last_position}")
        self.last_position = position
        if ticket_id is None:
            return problems
        stream = self._streams.get(ticket_id, _EMPTY)
        if version != stream.version + 1:
            problems.append(
                f"stream_version {version} follows {stream.version} for ticket {ticket_id}"
            )
        ticket, content = stream.ticket, stream.content
        # Each branch folds on what the rules derive, whatever the row recorded: one bad
        # row does not derail the rest.
        if action in _REQUEST_ACTIONS:
            payload = row[_PAYLOAD]
            undigested = self._undigested
            request, derived, request_digest = _rederive(ticket, payload, undigested.get(ticket_id))
            if mismatch := _compare(outcome, before, after, derived):
                problems.append(mismatch)
            if request is not None and derived.outcome is _ACCEPTED_OUTCOME:
                content = _written(content if ticket is not None else None, request)
                if request_digest is None:
                    undigested[ticket_id] = payload
                else:
                    undigested.pop(ticket_id, None)
                ticket = _accepted(
                    ticket,
                    request,
                    request_digest or _UNDIGESTED,
                    derived.state_after or _PENDING,
                    (position, recorded_at, row[_RESPONSE]),
                )
        elif action in _DELIVERIES and ticket is not None:
            derived = _DELIVERY[ticket.state]
            if mismatch := _compare(outcome, before, after, derived):
                problems.append(mismatch)
            state = derived.state_after or ticket.state
            ticket = msgspec.structs.replace(ticket, state=state, updated_at=recorded_at)
        self._streams[ticket_id] = Stream(version or stream.version, ticket, content)
        return problems

    def tickets(self) -> dict[str, Ticket]:
        return {tid: t for tid, s in self.streams.items() if (t := _ticket_of(s)) is not None}

    def records(self) -> dict[str, Record]:
        """Every ticket as `Rewind` keeps it: what a checkpoint of this position holds."""
        return {
            tid: r for tid, s in self._streams.items() if (r := _record_of_stream(s)) is not None
        }

    def record(self, ticket_id: str) -> Record | None:
        """One ticket as `Rewind` keeps it; None before its CREATE."""
        stream = self._streams.get(ticket_id)
        return _record_of_stream(stream) if stream is not None else None

    def _digest_undigested(self) -> None:
        for ticket_id, payload in self._undigested.items():
            stream = self._streams[ticket_id]
            standing = stream.ticket
            assert standing is not None and standing.last_accepted is not None
            last = msgspec.structs.replace(standing.last_accepted, digest=digest(payload))
            standing = msgspec.structs.replace(standing, last_accepted=last)
            self._streams[ticket_id] = msgspec.structs.replace(stream, ticket=standing)
        self._undigested.clear()


class Record(msgspec.Struct, array_like=True, gc=False):
    """One ticket as `Rewind` keeps it, changed in place as the fold goes.

    What the ticket shows, no more: the last accepted request, which only decisions need,
    is the writer's and `verify`'s. A checkpoint stores these as they are (compact
    arrays), so loading one is a single decode.
    """

    external_ticket_id: str
    state: State
    title: str
    details: str
    custom_tags: dict[str, str]
    created_at: str
    updated_at: str


#: What `Rewind` reads of an event that may change a ticket (an accepted request or a
#: delivery): position, ticket_id, action, outcome, recorded_at, the payload of a request.
RewindRow = tuple[int, str | None, str, str, str, str | None]


class Rewind:
    """Every ticket at a position: a checkpoint's records, then the events after it.

    A checkpoint's records may be handed over still encoded (`held`, with the `decode`
    that reads one): each is decoded only when the fold changes that ticket or a reader
    asks for it, so reaching a moment costs what changed since the checkpoint, not a
    decode of every ticket. `records` decodes whatever is still held.
    """

    def __init__(
        self,
        records: dict[str, Record] | None = None,
        position: int = 0,
        *,
        held: dict[str, Any] | None = None,
        decode: Callable[[Any], Record | None] | None = None,
        decode_all: Callable[[], dict[str, Record] | None] | None = None,
    ) -> None:
        self._records: dict[str, Record] = records if records is not None else {}
        self._held = held if held is not None and decode is not None else {}
        self._decode = decode
        #: Every held record decoded in one call (None if it cannot be): faster than one by one.
        self._decode_all = decode_all
        self.position = position

    @property
    def records(self) -> dict[str, Record]:
        """Every ticket's record, by ncentralTicketId."""
        if self._held and self._decode is not None:
            held, decode = self._held, self._decode
            self._held = {}
            with gc_paused():
                everything = self._decode_all() if self._decode_all is not None else None
                if everything is not None:
                    # What the fold reached (changed, or created) stands over the checkpoint's.
                    everything.update(self._records)
                    self._records = everything
                    return everything
                for ticket_id, encoded in held.items():
                    if (record := decode(encoded)) is not None:
                        self._records[ticket_id] = record
        return self._records

    def fold(self, rows: Iterable[RewindRow], through: int) -> None:
        """Fold in the events after `self.position` through `through`, in log order.

        `rows` need only hold the events that may change a ticket (see `RewindRow`).
        """
        with gc_paused():
            self._fold(rows)
        self.position = through

    def tickets(self) -> dict[str, Ticket]:
        records = self.records
        with gc_paused():
            return {tid: _ticket_of_record(tid, r) for tid, r in records.items()}

    def ticket(self, ticket_id: str) -> Ticket:
        """One ticket, built only when asked for (a page needs a hundred, not them all)."""
        record = self._records.get(ticket_id) or self._take(ticket_id)
        if record is None:
            raise KeyError(ticket_id)
        return _ticket_of_record(ticket_id, record)

    def _fold(self, rows: Iterable[RewindRow]) -> None:
        records, held = self._records, self._held
        for position, ticket_id, action, outcome, recorded_at, payload in rows:
            if ticket_id is None:
                continue
            record = records.get(ticket_id)
            if record is None and held:
                record = self._take(ticket_id)
            if outcome == _ACCEPTED and payload is not None:
                trigger = _TRIGGER_BY_NAME.get(action)
                if trigger is None:
                    continue
                try:
                    written = _decode_written(payload)
                except msgspec.DecodeError:
                    continue  # unreadable: the rules derive `invalid`, and verify says so
                if record is None:
                    if trigger is Trigger.CREATE:
                        records[ticket_id] = _created(position, recorded_at, written)
                    continue
                after = next_state(record.state, trigger)
                if after is None or trigger is Trigger.CREATE:
                    continue
                record.state, record.updated_at = after, recorded_at
                if written.title is not None:
                    record.title = written.title
                if written.details is not None:
                    record.details = written.details
                if written.custom_tags is not None:
                    record.custom_tags = written.custom_tags
            elif record is not None and action in _DELIVERIES:
                record.state = next_state(record.state, Trigger.DELIVER) or record.state
                record.updated_at = recorded_at

    def _take(self, ticket_id: str) -> Record | None:
        """Decode one held record into `records` (None if none is held, or it is unreadable)."""
        encoded = self._held.pop(ticket_id, None)
        if encoded is None or self._decode is None:
            return None
        record = self._decode(encoded)
        if record is not None:
            self._records[ticket_id] = record
        return record


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a fold allocates its records by the hundred
    thousand: none of them forms a cycle, and the collector, woken every few hundred
    allocations, would walk them over and over (it doubles a checkpoint's decode)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_EMPTY = Stream()
#: The digest of a last accepted request that `Projection` holds as text: no SHA-256
#: digest, nor the empty one `decide` is handed when it compares none.
_UNDIGESTED = "(not digested yet)"
_ACCEPTED = Outcome.ACCEPTED.value
_TRIGGER_BY_NAME = {action.value: trigger for action, trigger in _TRIGGER_OF.items()}


class _Written(msgspec.Struct, rename="camel"):
    """The part of an accepted request that changes what the ticket shows."""

    title: str | None = None
    details: str | None = None
    custom_tags: dict[str, str] | None = None


_decode_written = msgspec.json.Decoder(_Written).decode


def _created(position: int, recorded_at: str, written: _Written) -> Record:
    return Record(
        external_id_for(position),
        next_state(State.NEW, Trigger.CREATE) or State.PENDING,
        written.title or "",
        written.details or "",
        written.custom_tags or {},
        recorded_at,
        recorded_at,
    )


def _ticket_of_record(ticket_id: str, record: Record) -> Ticket:
    return Ticket(
        ncentral_ticket_id=ticket_id,
        external_ticket_id=record.external_ticket_id,
        state=record.state,
        title=record.title,
        details=record.details,
        custom_tags=record.custom_tags,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _record_of_stream(stream: Stream) -> Record | None:
    """The record of a replayed stream (None before its CREATE), with no `Ticket` built
    between: verify asks for one at every checkpoint for each ticket changed since the last."""
    standing, content = stream.ticket, stream.content
    if standing is None:
        return None
    title, details, tags = _held(standing, content)
    return Record(
        standing.external_ticket_id,
        standing.state,
        title,
        details,
        tags,
        standing.created_at,
        standing.updated_at,
    )


def _held(standing: Standing, content: Content) -> tuple[str, str, dict[str, str]]:
    """Title, details and tags, which a replayed stream holds (the writer's may not)."""
    title, details, tags = content.title, content.details, content.custom_tags
    if title is None or details is None or tags is None:
        raise ValueError(
            f"ticket {standing.ncentral_ticket_id!r}: this stream does not hold its content"
        )
    return title, details, tags


def _ticket_of(stream: Stream) -> Ticket | None:
    """The whole ticket of a replayed stream (None before its CREATE)."""
    standing, content = stream.ticket, stream.content
    if standing is None:
        return None
    title, details, tags = _held(standing, content)
    return Ticket(
        ncentral_ticket_id=standing.ncentral_ticket_id,
        external_ticket_id=standing.external_ticket_id,
        state=standing.state,
        title=title,
        details=details,
        custom_tags=tags,
        created_at=standing.created_at,
        updated_at=standing.updated_at,
        last_accepted=standing.last_accepted,
    )


def _accepted(
    ticket: Standing | None,
    request: TicketRequest,
    request_digest: str,
    state: State,
    recorded: tuple[int, str, str | None],
) -> Standing:
    """The ticket once `request` is accepted into `state`; `recorded` is where, when, and
    what it was answered (position, recorded_at, response)."""
    position, recorded_at, response = recorded
    last = LastAccepted(request.action, request_digest, response)
    if ticket is None:
        return Standing(
            ncentral_ticket_id=request.ncentral_ticket_id,
            external_ticket_id=external_id_for(position),
            state=state,
            created_at=recorded_at,
            updated_at=recorded_at,
            last_accepted=last,
        )
    return msgspec.structs.replace(ticket, state=state, updated_at=recorded_at, last_accepted=last)


def _written(content: Content | None, request: TicketRequest) -> Content:
    """The content after an accepted request: each field it sent replaces the one before.

    `content` is None for a new ticket, whose missing fields start empty.
    """
    if content is None:
        return Content(
            title=request.title or "",
            details=request.details or "",
            custom_tags=request.custom_tags or {},
        )
    return Content(
        title=request.title if request.title is not None else content.title,
        details=request.details if request.details is not None else content.details,
        custom_tags=request.custom_tags if request.custom_tags is not None else content.custom_tags,
    )


def _rederive(
    ticket: Standing | None, payload: str, undigested: str | None
) -> tuple[TicketRequest | None, Decision, str | None]:
    """The request, what the rules decide of it, and its digest where one was needed.

    `undigested` is the text of the ticket's last accepted request while its digest is
    `_UNDIGESTED`: the same text is the same request, so `decide` is handed that digest.
    """
    try:
        request = parse_request(payload)
    except InvalidRequest:
        return None, _INVALID, None
    # Only a repeat of the last accepted action can be a duplicate: hashing the payload of
    # any other request would tell `decide` nothing.
    last = ticket.last_accepted if ticket is not None else None
    if last is None or last.action != request.action:
        return request, decide(ticket, request, ""), None
    if payload == undigested:
        return request, decide(ticket, request, _UNDIGESTED), None
    request_digest = digest(payload)
    return request, decide(ticket, request, request_digest), request_digest


def _compare(outcome: str, before: str | None, after: str | None, derived: Decision) -> str | None:
    """What a row recorded that the rules do not derive, said; None when they agree."""
    # States and outcomes are StrEnums: each equals its text, so no conversion is needed
    # unless they differ.
    same = derived.outcome is _RECORDED or outcome == derived.outcome
    if same and before == derived.state_before and after == derived.state_after:
        return None
    recorded = [before, after]
    expected = [_value(derived.state_before), _value(derived.state_after)]
    if derived.outcome is not _RECORDED:
        recorded.insert(0, outcome)
        expected.insert(0, derived.outcome.value)
    return f"recorded {tuple(recorded)} but the rules derive {tuple(expected)}"


def _state(name: str) -> State:
    """`State(name)` by a dict lookup (the Enum call costs more than the fold's step)."""
    return _STATES.get(name) or State(name)


_STATES = {state.value: state for state in State}


def _value(state: State | None) -> str | None:
    return state.value if state is not None else None

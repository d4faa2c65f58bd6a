"""The facts the log stores, and the shape of what N-central sends.

An `Event` is one row of the append-only log. Its `payload` is JSON text: for a request
from N-central, the body exactly as received (so an auditor sees what was sent, and a
retry can be recognised by its digest); for any other fact, that fact's own fields.
Each event is chained to the one before by `hash` = SHA-256(prev_hash + canonical row).
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from itertools import accumulate
from typing import Annotated, Any

import msgspec

__all__ = [
    "ACTION_ALIASES",
    "GENESIS_HASH",
    "HASHED_COLUMNS",
    "MAX_DEPTH",
    "SCHEMA_VERSION",
    "Action",
    "Event",
    "Fact",
    "InvalidRequest",
    "Outcome",
    "TicketRequest",
    "action_named",
    "admit_request",
    "chain_hash",
    "chain_hash_values",
    "digest",
    "is_connection_test",
    "parse_request",
    "read_json",
    "ticket_id_of",
]

#: Bumped when a fact gains a field; old rows keep theirs, so old logs stay readable.
SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64
CONNECTION_TEST_PREFIX = "TEST_NC_TICKET_ID"
#: How deep arrays and objects may nest in a body we store. msgspec descends one C-stack
#: level per nesting level, bounded by what is left of Python's recursion limit (1,000)
#: where it runs; a fixed bound well below it lets every reader of the log (the API, the
#: shell tools, verify) decode what was stored, wherever it is called from.
MAX_DEPTH = 512


class Action(StrEnum):
    """What N-central asks for."""

    CREATE = "CREATE"
    UPDATE = "UPDATE"
    RESOLVE = "RESOLVE"
    REOPEN = "REOPEN"


class Fact(StrEnum):
    """Everything else the log records."""

    INVALID_REQUEST = "invalid_request"
    IDENTITY_DELIVERED = "identity_delivered"
    CALLBACK_ATTEMPTED = "callback_attempted"
    CALLBACK_DELIVERED = "callback_delivered"
    CALLBACK_DEAD_LETTERED = "callback_dead_lettered"
    CALLBACK_RETRY_REQUESTED = "callback_retry_requested"


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    #: A retry of the ticket's last accepted request: answered as the first time.
    DUPLICATE = "duplicate"
    #: CREATE for a ticket that already exists: answered with its identity.
    EXISTING = "existing"
    CONNECTION_TEST = "connection_test"
    #: The state machine refused the action in the ticket's state.
    REJECTED = "rejected"
    NOT_FOUND = "not_found"
    #: `psaTicketNumber` names another ticket.
    MISMATCH = "mismatch"
    #: The body could not be read as a request.
    INVALID = "invalid"
    #: A fact that is not a request (a callback attempt, a delivery): simply recorded.
    RECORDED = "recorded"


TicketId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


# `gc=False` on the Structs made for every request (here and in `projection`): they hold
# only text, numbers, dicts of text and other such Structs, so they can never be part of a
# reference cycle, and the cyclic collector need not track them. Tracked, they cost the
# PostgreSQL writer 8% of its CPU in collections (`python -m bench postgres`).
class TicketRequest(msgspec.Struct, gc=False, rename="camel", frozen=True):
    """N-central's request body. Keys it does not name stay in the stored payload."""

    action: str
    ncentral_ticket_id: TicketId
    title: str | None = None
    details: str | None = None
    psa_ticket_number: str | None = None
    custom_tags: dict[str, str] | None = None


class InvalidRequest(Exception):
    """A body that is not a usable request. `malformed` bodies are not JSON at all."""

    def __init__(self, detail: str, *, field: str | None, malformed: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.malformed = malformed


class Event(msgspec.Struct, gc=False, frozen=True, kw_only=True):
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
    payload: str
    response: str | None = None
    schema_version: int = SCHEMA_VERSION
    prev_hash: str = GENESIS_HASH
    hash: str = ""


def admit_request(body: bytes) -> TicketRequest:
    """What the Ticketing Endpoint accepts from now on: a readable body (`read_json`) that
    `parse_request` accepts, about a ticket N-central could have.

    Stricter than `parse_request`, which replay applies to every stored request: a log
    written before a check was added must still verify, so new checks belong here.
    Raises `InvalidRequest` naming what is wrong.
    """
    read_json(body)
    request = parse_request(body)
    ticket_id = request.ncentral_ticket_id
    # NUL is data in a title or a tag, never in an ID: the log's ticket_id column on
    # PostgreSQL could not hold it.
    test = is_connection_test(ticket_id) and "\x00" not in ticket_id
    if not (test or _NCENTRAL_ID.fullmatch(ticket_id)):
        raise InvalidRequest(
            f"ncentralTicketId {ticket_id!r} is not an N-central ticket ID: expected ASCII"
            f" digits without leading zeros (N-central is called back with it as an integer),"
            f" or {CONNECTION_TEST_PREFIX}... from the connection test",
            field="ncentralTicketId",
            malformed=False,
        )
    return request


def read_json(body: bytes) -> Any:
    """The body decoded, when every reader of the log could decode it as stored.

    That is: UTF-8 throughout (RFC 8259 requires it, and the payload column is text), no
    deeper than `MAX_DEPTH`, and no number msgspec cannot hold (more than 4,300 digits, or
    past a double's range). Raises `InvalidRequest` otherwise, and only that.
    """
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"body is not UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start} ({exc.reason})",
            field=None,
            malformed=True,
        ) from None
    if _nests_too_deep(body):
        raise InvalidRequest(
            f"JSON nested deeper than {MAX_DEPTH} levels", field=None, malformed=True
        )
    try:
        return msgspec.json.decode(body)
    except msgspec.ValidationError as exc:
        field = _field_out_of_range(body)
        where = f"`{field}`" if field else "the body"
        raise InvalidRequest(
            f"a number in {where} is out of range: {exc}", field=field, malformed=False
        ) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"body is not JSON: {exc}", field=None, malformed=True) from None


#: Other names N-central uses for an action: CLOSE is RESOLVE.
ACTION_ALIASES = {"CLOSE": Action.RESOLVE}


def action_named(text: str) -> Action | None:
    """The action `text` names, in any case, aliases included; None when it names none."""
    return _ACTIONS.get(text.strip().upper())


def parse_request(body: bytes | str) -> TicketRequest:
    """Decode and check a request body; the action comes back upper-cased, CLOSE as RESOLVE.

    Replay hands the stored payload as text: msgspec reads it without a copy to bytes.

    Raises `InvalidRequest` naming the offending field.
    """
    try:
        request = _decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(str(exc), field=_field_of(str(exc)), malformed=False) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"body is not JSON: {exc}", field=None, malformed=True) from None
    action = _ACTIONS.get(request.action) or action_named(request.action)
    if action is None:
        allowed = ", ".join([*Action, *ACTION_ALIASES])
        raise InvalidRequest(
            f"unknown action {request.action!r}; expected one of {allowed}",
            field="action",
            malformed=False,
        )
    if action is _CREATE and not is_connection_test(request.ncentral_ticket_id):
        for name, value in (("title", request.title), ("details", request.details)):
            if value is None:
                raise InvalidRequest(f"CREATE requires `{name}`", field=name, malformed=False)
    # An Action is a StrEnum: it equals its text, without the Enum's `value` lookup.
    if request.action == action:
        return request
    return msgspec.structs.replace(request, action=action.value)


def is_connection_test(ticket_id: str) -> bool:
    """N-central's "test connection" button sends a CREATE with such an ID."""
    return ticket_id.startswith(CONNECTION_TEST_PREFIX)


def digest(payload: str | bytes) -> str:
    """Identifies a body: a retry sends the same bytes again. The text of a body and its
    UTF-8 bytes have the same digest."""
    data = payload.encode() if isinstance(payload, str) else payload
    return hashlib.sha256(data).hexdigest()


def chain_hash(event: Event, prev_hash: str) -> str:
    """SHA-256 over the previous hash and the canonical encoding of every other column."""
    return chain_hash_values(msgspec.structs.astuple(event)[:HASHED_COLUMNS], prev_hash)


#: The columns the chain covers: `Event`'s first fields, position to schema_version; then
#: come prev_hash and hash, as in a stored row.
HASHED_COLUMNS = 13


def chain_hash_values(values: tuple[Any, ...], prev_hash: str) -> str:
    """`chain_hash` of a row given as its first `HASHED_COLUMNS` columns, in
    `Event` field order: how `verify` hashes rows without building an `Event` each."""
    return hashlib.sha256(prev_hash.encode() + _ENCODER.encode(values)).hexdigest()


def ticket_id_of(body: bytes) -> str | None:
    """Best effort: the ticket a rejected body was about, so its stream shows the attempt.

    Only `ncentralTicketId` is decoded; whatever else is wrong with the body (a bad byte
    in another string, a huge number) does not hide which ticket it was about.
    """
    if _nests_too_deep(body):
        return None
    try:
        ticket_id = _decode_mention(body).ncentral_ticket_id
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    usable = isinstance(ticket_id, str) and 0 < len(ticket_id) <= 128 and "\x00" not in ticket_id
    return ticket_id if usable else None


class _Mention(msgspec.Struct, rename="camel"):
    ncentral_ticket_id: Any = None


_decode = msgspec.json.Decoder(TicketRequest).decode
_decode_mention = msgspec.json.Decoder(_Mention).decode
_decode_fields = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_ENCODER = msgspec.json.Encoder()
_ACTIONS = {a.value: a for a in Action} | ACTION_ALIASES
_CREATE = Action.CREATE
_FIELD_AT = re.compile(r"at `\$\.([A-Za-z_][A-Za-z0-9_]*)")
_FIELD_MISSING = re.compile(r"missing required field `([^`]+)`")
#: N-central's ticket IDs are integers, and callbacks send them back as integers: any other
#: spelling ("0042", "١٢٣", "²") would be called back as some other ticket.
_NCENTRAL_ID = re.compile(r"0|[1-9][0-9]*")
#: A JSON string, escapes included; an unterminated one runs to the end (so a scan never
#: backtracks over the rest of the body for each quote).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_OPENING = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_LEVEL_STEP = {ord("["): 1, ord("]"): -1}


def _nests_too_deep(body: bytes) -> bool:
    """Whether arrays and objects nest deeper than `MAX_DEPTH`, checked without recursion.

    A real request has a handful of brackets and costs two counts; only a body with more
    brackets than the bound is scanned, brackets inside strings left out.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    brackets = _JSON_STRING.sub(b"", body).translate(_OPENING, _NOT_BRACKETS)
    levels = accumulate(map(_LEVEL_STEP.__getitem__, brackets))
    return any(map(MAX_DEPTH.__lt__, levels))


def _field_out_of_range(body: bytes) -> str | None:
    """The top-level key whose value holds the number msgspec refused, if there is one."""
    try:
        fields = _decode_fields(body)
    except msgspec.DecodeError:
        return None
    for key, raw in fields.items():
        try:
            msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return key
    return None


def _field_of(message: str) -> str | None:
    match = _FIELD_AT.search(message) or _FIELD_MISSING.search(message)
    return match.group(1) if match else None

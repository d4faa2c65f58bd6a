"""The OpenAPI document at /schema/openapi.json: what each route takes and every answer.

Litestar infers a route's document from its signature. Some handlers read their input by
hand on purpose (N-central's body as raw bytes, so that even an unreadable one becomes an
event; the audit API's query string, so that every refusal names the parameter), so what
Litestar cannot see is declared here: request bodies, query parameters, every answer with
its problem+json shape, and the headers that come with 401, 429 and 503. A test runs
schemathesis against a real server to hold the document and the answers to each other.

Served as JSON only: Litestar's interactive viewers load their scripts from CDNs, and no
page on our origin runs a script from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

from service.audit.events import ACTIONS, MAX_LIMIT, OUTCOMES
from service.audit.moments import LAST_POSITION
from service.audit.shapes import EventView, TicketView
from service.ledger.answers import PROBLEM_JSON
from service.ledger.outbox import Callback
from statemachine.events import Action, TicketRequest
from statemachine.ticket import State

__all__ = [
    "CALLBACK_ANSWERS",
    "CALLBACK_LIST_ANSWERS",
    "CALLBACK_PAGE_PARAMETERS",
    "CALLBACK_RETRY_ANSWERS",
    "CONSOLE_ANSWERS",
    "CONSOLE_PARAMETERS",
    "CSV_DOWNLOAD_ANSWERS",
    "DEAD_RETRY_ANSWERS",
    "DOWNLOAD_PARAMETERS",
    "EVENT_ANSWERS",
    "EVENT_PARAMETERS",
    "JSONL_DOWNLOAD_ANSWERS",
    "NCENTRAL_SECURITY",
    "ONE_EVENT_ANSWERS",
    "OPERATOR_SECURITY",
    "PAGE_ANSWERS",
    "PAGE_PARAMETERS",
    "PAGE_RETRY_ANSWERS",
    "RETRY_BODY",
    "REVIEW_PARAMETERS",
    "TICKETING_ANSWERS",
    "TICKETING_BODY",
    "TICKET_ANSWERS",
    "TICKET_LIST_ANSWERS",
    "TICKET_LIST_PARAMETERS",
    "TICKET_PARAMETERS",
    "EventList",
    "Identity",
    "Problem",
    "TicketList",
    "documented",
    "openapi_config",
]

JSONL = "application/x-ndjson"


class Identity(msgspec.Struct, rename="camel"):
    """What N-central keeps for a ticket: our number and where a technician opens it."""

    external_ticket_id: str
    ticket_url: str


class Problem(msgspec.Struct, rename="camel"):
    """RFC 9457 problem details. The optional members name what was wrong, when known."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    parameter: str | None = None
    ticket: str | None = None
    state: str | None = None
    action: str | None = None
    allowed_actions: list[str] | None = None
    limit: int | None = None


class EventList(msgspec.Struct):
    events: list[EventView]
    #: The cursor of the next page; null on the last one.
    next: str | None


class TicketList(msgspec.Struct):
    tickets: list[TicketView]
    next: str | None


def openapi_config() -> OpenAPIConfig:
    """One per app: Litestar keeps state in the config and its plugins."""
    return OpenAPIConfig(
        title="psa-ledger",
        version="0.1.0",
        path="/schema",
        # /schema and /schema/openapi.json both answer the document; no viewer, no CDN.
        render_plugins=[JsonRenderPlugin(path=["/openapi.json", "/"])],
        components=Components(
            security_schemes={
                "ncentral": SecurityScheme(
                    type="http",
                    scheme="basic",
                    description="N-central's credential (PSA_LEDGER_USERNAME / _PASSWORD):"
                    " may only send ticket actions",
                ),
                "operator": SecurityScheme(
                    type="http",
                    scheme="basic",
                    description="The operators' credential (PSA_LEDGER_OPERATOR_USERNAME /"
                    " _PASSWORD): ticket pages and /api",
                ),
            }
        ),
    )


NCENTRAL_SECURITY: list[SecurityRequirement] = [{"ncentral": []}]
OPERATOR_SECURITY: list[SecurityRequirement] = [{"operator": []}]


def documented(
    *,
    body: RequestBody | None = None,
    parameters: list[Parameter] | None = None,
    jsonl: bool = False,
) -> type[Operation]:
    """An `operation_class=` for a handler that reads its input by hand.

    It adds the request body and the query parameters, the headers of 401, 429 and 503
    (which `ResponseSpec` cannot carry), and with `jsonl` the JSON-lines form of the 200.
    The 400 Litestar adds for what it validates itself is given our shape: every error
    leaves as problem+json (service.problems).
    """

    @dataclass
    class Documented(Operation):
        def __post_init__(self) -> None:
            if body is not None:
                self.request_body = body
            if parameters:
                self.parameters = [*(self.parameters or []), *parameters]
            responses = self.responses or {}
            for status, response in list(responses.items()):
                if not isinstance(response, OpenAPIResponse):
                    continue
                if int(status) >= 400 and PROBLEM_JSON not in (response.content or {}):
                    response.content = {PROBLEM_JSON: OpenAPIMediaType(schema=_PROBLEM)}
                if status in _HEADERS:
                    response.headers = dict(_HEADERS[status])
            ok = responses.get("200")
            if jsonl and isinstance(ok, OpenAPIResponse) and ok.content is not None:
                ok.content[JSONL] = OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, description="one JSON object a line")
                )

    return Documented


def _problems(**described: str) -> dict[int, ResponseSpec]:
    """problem+json answers by status, given as `_404="when"`."""
    return {
        int(status.lstrip("_")): ResponseSpec(
            Problem, description=when, media_type=PROBLEM_JSON, generate_examples=False
        )
        for status, when in described.items()
    }


def _ok(shape: Any, description: str) -> ResponseSpec:
    return ResponseSpec(shape, description=description, generate_examples=False)


def _query(name: str, schema: Schema, description: str, **extra: Any) -> Parameter:
    return Parameter(name=name, param_in="query", schema=schema, description=description, **extra)


def _header(description: str, *, required: bool = False) -> OpenAPIHeader:
    return OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING), description=description, required=required
    )


_PROBLEM = Reference(ref="#/components/schemas/Problem")
_HEADERS = {
    "401": {"WWW-Authenticate": _header('Basic realm="psa-ledger"', required=True)},
    "429": {"Retry-After": _header("seconds to wait", required=True)},
    "503": {"Retry-After": _header("seconds to wait", required=True)},
}
_SIGN_IN = _problems(
    _401="no or wrong credentials (WWW-Authenticate: Basic)",
    _429="too many failed logins from this address; try again after Retry-After seconds",
)
_BAD_QUERY = _problems(_400="a query parameter cannot be used; `parameter` names it")
_RETRY_REFUSED = _problems(
    _403="refused as a possible cross-site request: send Content-Type: application/json",
    _503="the event log cannot take writes now; retry after Retry-After seconds",
)

TICKETING_ANSWERS = {
    200: _ok(Identity, "sync CREATE, UPDATE, RESOLVE, REOPEN, a retry, the connection test"),
    202: ResponseSpec(None, description="async CREATE: empty; N-central is called back"),
    **_problems(
        _400="the body is not JSON",
        _404="UPDATE, RESOLVE or REOPEN for a ticket never created here",
        _409="the action is not allowed in the ticket's state, or psaTicketNumber names"
        " another ticket",
        _413="the body is larger than 1 MiB",
        _422="a field is missing or ill-typed, or the action is unknown; `field` names it",
        _503="the event log cannot take writes now; nothing was written; retry after"
        " Retry-After seconds",
    ),
    **_SIGN_IN,
}
EVENT_ANSWERS = {
    200: _ok(EventList, "a page of events, oldest first unless order=desc"),
    **_BAD_QUERY,
    **_SIGN_IN,
}
ONE_EVENT_ANSWERS = {
    200: _ok(EventView, "the whole event, payload and answer included"),
    **_problems(
        _400="position is not a log position, or a query parameter was given",
        _404="no event at that position",
    ),
    **_SIGN_IN,
}
TICKET_LIST_ANSWERS = {
    200: _ok(TicketList, "a page of tickets, in ncentralTicketId order"),
    **_BAD_QUERY,
    **_SIGN_IN,
}
TICKET_ANSWERS = {
    200: _ok(TicketView, "the ticket now, or as it was at as_of"),
    **_BAD_QUERY,
    **_problems(_404="no such ticket (at as_of)"),
    **_SIGN_IN,
}
CALLBACK_LIST_ANSWERS = {
    **_problems(_400="status is neither pending nor dead"),
    **_SIGN_IN,
}
CALLBACK_ANSWERS = {
    200: _ok(Callback, "the callback owed for the ticket"),
    **_problems(_404="no callback for the ticket"),
    **_SIGN_IN,
}
CALLBACK_RETRY_ANSWERS = {
    202: _ok(Callback, "the callback, pending again on a fresh schedule"),
    **_problems(_404="no callback for the ticket", _409="the callback was already delivered"),
    **_RETRY_REFUSED,
    **_SIGN_IN,
}
DEAD_RETRY_ANSWERS = {**_RETRY_REFUSED, **_SIGN_IN}
PAGE_ANSWERS = {
    **_problems(
        _400="page is not a whole number from 1, as_of is neither a time nor a position,"
        " or another parameter was given",
        _404="no such ticket (at as_of), or no such page",
    ),
    **_SIGN_IN,
}

_TEXT = Schema(type=OpenAPIType.STRING, min_length=1)
_TIME = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME)
_MOMENT = Schema(one_of=[_TIME, Schema(type=OpenAPIType.INTEGER, minimum=0, maximum=LAST_POSITION)])
#: Cursors are the base64url text handed out as `next`.
_CURSOR = _query(
    "cursor",
    Schema(type=OpenAPIType.STRING, pattern="^[A-Za-z0-9_-]+=*$"),
    "the `next` of the previous page",
)
_LIMIT = _query(
    "limit",
    Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=MAX_LIMIT),
    "page size (default 100)",
)


def _choice(values: list[str]) -> Schema:
    return Schema(type=OpenAPIType.STRING, enum=values)


EVENT_PARAMETERS = [
    _query("ticket", _TEXT, "only this ncentralTicketId"),
    _query("action", _choice(sorted(ACTIONS)), "only this action"),
    _query("outcome", _choice(sorted(OUTCOMES)), "only this outcome"),
    _query("actor", _TEXT, "only events recorded for this credential"),
    _query("since", _TIME, "from this time (inclusive)"),
    _query("until", _TIME, "up to this time (inclusive)"),
    _query("order", _choice(["asc", "desc"]), "asc (default) or desc"),
    _LIMIT,
    _CURSOR,
    _query("format", _choice(["json", "jsonl"]), f"jsonl: one event a line ({JSONL})"),
]
PAGE_PARAMETERS = [
    _query("page", Schema(type=OpenAPIType.INTEGER, minimum=1), "the timeline's page (default 1)"),
    _query("as_of", _MOMENT, "the ticket as it was then: a time or a log position"),
]
CONSOLE_ANSWERS = {
    **_problems(_400="a query parameter cannot be used; `parameter` names it"),
    **_SIGN_IN,
}


def _download(media_type: str) -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(
            str,
            description="the window's events, as `psa-ledger export` writes them",
            media_type=media_type,
            generate_examples=False,
        ),
        **CONSOLE_ANSWERS,
    }


CSV_DOWNLOAD_ANSWERS = _download("text/csv")
JSONL_DOWNLOAD_ANSWERS = _download(JSONL)
PAGE_RETRY_ANSWERS = {
    303: ResponseSpec(None, description="retry requested: back to the callbacks page"),
    **_problems(
        _403="refused as a possible cross-site request: a form of another site",
        _404="no callback for the ticket",
        _409="the callback was already delivered",
        _503="the event log cannot take writes now; retry after Retry-After seconds",
    ),
    **_SIGN_IN,
}
_FORM_TEXT = Schema(type=OpenAPIType.STRING)
#: key:value, or empty (a form's blank field).
_TAG = "^([^:]+:|$)"
CONSOLE_PARAMETERS = [
    _query(
        "state",
        _choice(["", *(s.value for s in State if s is not State.NEW)]),
        "only tickets in this state (empty: all)",
    ),
    _query(
        "tag",
        Schema(
            type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING, pattern="^([^:]+:|$)")
        ),
        "key:value of customTags; repeat for several, all must match",
        style="form",
        explode=True,
    ),
    _query("ncentral", _FORM_TEXT, "only the ticket with this ncentralTicketId"),
    _query("text", _FORM_TEXT, "only tickets whose title or details contain this text"),
    _CURSOR,
]
_WINDOW_PARAMETERS = [
    _query("from", _TIME, "the window's start (default: 24 hours ago); no offset means UTC"),
    _query("to", _TIME, "the window's end, inclusive (default: now)"),
    _query("ticket", _FORM_TEXT, "only this ncentralTicketId"),
    _query("action", _choice(["", *sorted(ACTIONS)]), "only this action"),
    _query("outcome", _choice(["", *sorted(OUTCOMES)]), "only this outcome"),
    _query("actor", _FORM_TEXT, "only events recorded for this credential"),
]
REVIEW_PARAMETERS = [
    *_WINDOW_PARAMETERS,
    _CURSOR,
    _query(
        "changes",
        _FORM_TEXT,
        "the ncentralTicketId after which 'What changed' goes on (its next page)",
    ),
]
DOWNLOAD_PARAMETERS = _WINDOW_PARAMETERS
CALLBACK_PAGE_PARAMETERS = [
    _query("retried", _FORM_TEXT, "the callback just retried, to say so on the page"),
]
TICKET_LIST_PARAMETERS = [
    _query(
        "state",
        _choice([s.value for s in State if s is not State.NEW]),
        "only tickets in this state",
    ),
    _query(
        "tag",
        Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING, pattern="^[^:]+:")),
        "key:value of customTags; repeat for several, all must match",
        style="form",
        explode=True,
    ),
    _query("updated_since", _TIME, "only tickets updated at or after this time"),
    _LIMIT,
    _CURSOR,
    _query("as_of", _MOMENT, "the tickets as they were then: a time or a log position"),
]
TICKET_PARAMETERS = [
    _query("as_of", _MOMENT, "the ticket as it was then: a time or a log position"),
]

#: The JSON Schema of the Struct that N-central's body is decoded with. Inlined: Litestar
#: rebuilds the document's component schemas from what it infers itself. The Struct takes
#: any string as `action` so that an unknown one is refused naming the choices; the
#: document names them.
_TICKET_REQUEST: Any = msgspec.json.schema_components([TicketRequest])[1]["TicketRequest"]
_TICKET_REQUEST["properties"]["action"] = {
    "type": "string",
    "enum": [*(a.value for a in Action), "CLOSE"],
    "description": "case-insensitive; CLOSE is RESOLVE. CREATE also needs title and details",
}
TICKETING_BODY = RequestBody(
    content={"application/json": OpenAPIMediaType(schema=_TICKET_REQUEST)},
    required=True,
    description="N-central's request. Keys not named here are kept in the event, not"
    " refused. Read as raw bytes: a body that is not JSON is answered 400 and recorded too.",
)
RETRY_BODY = RequestBody(
    content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
    description="ignored; its JSON content type shows that no other site's form sent it",
)

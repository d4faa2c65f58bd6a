"""The operator API: the event log and the tickets, filtered, paged, and at any moment.

Query parameters are read by hand rather than by Litestar's signature model so that every
refusal is a problem+json 400 that names the parameter, unknown ones included: an auditor
who types `?tiket=` must hear about it, not get the whole log back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import MultiDict

from service.audit.cursors import BadCursor
from service.audit.events import (
    ACTIONS,
    OUTCOMES,
    EventFilter,
    Order,
    Page,
    cursor_position,
    normalise_action,
    search,
)
from service.audit.moments import last_position_at
from service.audit.shapes import event_view, ticket_view
from service.audit.tickets import (
    TicketFilter,
    TicketPage,
    cursor_ticket,
    find_ticket,
    list_tickets,
)
from service.digits import NotAWholeNumber, shown, whole_number
from service.http import openapi
from service.http.auth import operator_guard
from service.http.queries import BadParameter, Params
from service.http.responses import problem_response
from service.settings import Settings
from service.storage import events as stored
from service.storage.readpool import ReadPool
from statemachine.projection import Ticket
from statemachine.ticket import State

__all__ = ["AuditApi"]

JSONL = "application/x-ndjson"


class AuditApi(Controller):
    path = "/api"
    guards = [operator_guard]  # noqa: RUF012  (Litestar reads it as a class attribute)
    tags = ["audit"]  # noqa: RUF012
    security = openapi.OPERATOR_SECURITY

    @get(
        "/events",
        summary="The event log, filtered and paged by an opaque cursor",
        responses=openapi.EVENT_ANSWERS,
        operation_class=openapi.documented(parameters=openapi.EVENT_PARAMETERS, jsonl=True),
    )
    async def events(self, request: Request[Any, Any, Any], reads: ReadPool) -> Response[bytes]:
        try:
            query = _EventQuery.parse(request.query_params, request.headers.get("accept", ""))
        except BadParameter as exc:
            return exc.response()
        page: Page = await reads.run(
            search, query.where, order=query.order, limit=query.limit, cursor=query.cursor
        )
        views = [event_view(e) for e in page.events]
        if query.jsonl:
            headers = (
                {"Link": f'<{_next_url(request, page.next)}>; rel="next"'} if page.next else {}
            )
            body = b"".join(_ENCODER.encode(v) + b"\n" for v in views)
            return Response(body, media_type=JSONL, headers=headers)
        return _json({"events": views, "next": page.next})

    @get(
        "/events/{position:str}",
        summary="One whole event, by its log position",
        responses=openapi.ONE_EVENT_ANSWERS,
        operation_class=openapi.documented(),
    )
    async def event(
        self, position: str, request: Request[Any, Any, Any], reads: ReadPool
    ) -> Response[bytes]:
        try:
            Params(request.query_params, allowed=set())
        except BadParameter as exc:
            return exc.response()
        try:
            number = whole_number(position)
        except NotAWholeNumber:
            detail = f"position {shown(position)} is not a log position"
            return BadParameter("position", detail).response()
        found = await reads.run(stored.at, number)
        if found is None:
            return problem_response(404, "Not found", f"no event at log position {number}")
        return _json(event_view(found))

    @get(
        "/tickets",
        summary="Tickets, filtered by state, customTags and last update",
        responses=openapi.TICKET_LIST_ANSWERS,
        operation_class=openapi.documented(parameters=openapi.TICKET_LIST_PARAMETERS),
    )
    async def tickets(
        self, request: Request[Any, Any, Any], reads: ReadPool, settings: Settings
    ) -> Response[bytes]:
        try:
            query = _TicketQuery.parse(request.query_params)
        except BadParameter as exc:
            return exc.response()
        page: TicketPage = await reads.run(_ticket_page, query)
        views = [ticket_view(t, base_url=settings.base_url) for t in page.tickets]
        return _json({"tickets": views, "next": page.next})

    @get(
        "/tickets/{external_ticket_id:str}",
        summary="One ticket, now or at a moment (as_of)",
        responses=openapi.TICKET_ANSWERS,
        operation_class=openapi.documented(parameters=openapi.TICKET_PARAMETERS),
    )
    async def ticket(
        self,
        external_ticket_id: str,
        request: Request[Any, Any, Any],
        reads: ReadPool,
        settings: Settings,
    ) -> Response[bytes]:
        try:
            params = Params(request.query_params, allowed={"as_of"})
            as_of = params.moment("as_of")
        except BadParameter as exc:
            return exc.response()
        position, ticket = await reads.run(_one_ticket, external_ticket_id, as_of)
        if ticket is None:
            when = "" if as_of is None else f" at log position {position}"
            return problem_response(404, "Not found", f"no ticket {external_ticket_id!r}{when}")
        return _json(ticket_view(ticket, base_url=settings.base_url, as_of_position=position))


_ENCODER = msgspec.json.Encoder()


class _EventQuery(msgspec.Struct, frozen=True):
    where: EventFilter
    order: Order
    limit: int
    cursor: str | None
    jsonl: bool

    @classmethod
    def parse(cls, params: MultiDict[str], accept: str) -> _EventQuery:
        p = Params(params, allowed=_EVENT_PARAMS)
        where = EventFilter(
            ticket=p.text("ticket"),
            action=p.choice("action", ACTIONS, normalise_action),
            outcome=p.choice("outcome", OUTCOMES, str.lower),
            actor=p.text("actor"),
            since=p.time("since"),
            until=p.time("until"),
        )
        order: Order = "desc" if p.choice("order", {"asc", "desc"}, str.lower) == "desc" else "asc"
        cursor = p.text("cursor")
        if cursor is not None:
            try:
                cursor_position(cursor, order)
            except BadCursor as exc:
                raise BadParameter("cursor", f"cursor: {exc}") from None
        fmt = p.choice("format", {"json", "jsonl"}, str.lower)
        jsonl = fmt == "jsonl" or (fmt is None and ("ndjson" in accept or "jsonl" in accept))
        return cls(where, order, p.limit(), cursor, jsonl)


class _TicketQuery(msgspec.Struct, frozen=True):
    where: TicketFilter
    limit: int
    cursor: str | None
    as_of: int | str | None

    @classmethod
    def parse(cls, params: MultiDict[str]) -> _TicketQuery:
        p = Params(params, allowed=_TICKET_PARAMS, repeatable=frozenset({"tag"}))
        states = {s.value for s in State if s is not State.NEW}
        where = TicketFilter(
            state=p.choice("state", states, str.lower),
            tags=p.tags("tag"),
            updated_since=p.time("updated_since"),
        )
        cursor = p.text("cursor")
        if cursor is not None:
            try:
                cursor_ticket(cursor)
            except BadCursor as exc:
                raise BadParameter("cursor", f"cursor: {exc}") from None
        return cls(where, p.limit(), cursor, p.moment("as_of"))


_EVENT_PARAMS = {
    "ticket", "action", "outcome", "actor", "since", "until", "order", "limit", "cursor", "format",
}  # fmt: skip
_TICKET_PARAMS = {"state", "tag", "updated_since", "limit", "cursor", "as_of"}


def _ticket_page(db: Any, query: _TicketQuery) -> TicketPage:
    as_of = None if query.as_of is None else last_position_at(db, query.as_of)
    return list_tickets(db, query.where, limit=query.limit, cursor=query.cursor, as_of=as_of)


def _one_ticket(
    db: Any, external_ticket_id: str, as_of: int | str | None
) -> tuple[int | None, Ticket | None]:
    position = None if as_of is None else last_position_at(db, as_of)
    return position, find_ticket(db, external_ticket_id, as_of=position)


def _json(value: Any) -> Response[bytes]:
    return Response(_ENCODER.encode(value), media_type="application/json")


def _next_url(request: Request[Any, Any, Any], cursor: str) -> str:
    # `items()`, in the order sent: Litestar's `multi_items()` walks a set of the names,
    # which each process hashes afresh, so the same request got links in another order.
    params = [(k, v) for k, v in request.query_params.items() if k != "cursor"]
    return f"{request.url.path}?{urlencode([*params, ('cursor', cursor)])}"

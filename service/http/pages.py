"""The page behind every `ticketUrl`: what a technician sees after clicking in N-central.

Everything that came from N-central is escaped by the template engine; the page needs
nothing from the internet (styles inline, no scripts), and it reflows to one column on a
phone. The timeline lists every event of the ticket's stream, refused and repeated
requests and callback attempts included, because "why is this ticket still open?" is
usually answered there.

`?as_of=` (a time or a log position) shows the ticket as it was then, replayed from its
own stream, with "earlier" and "later" steps to its neighbouring events; the timeline
then ends at that moment. It comes `PAGE_SIZE` events at a time (`?page=N`), each event
shortened (see `entries`).
"""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, MediaType, Request, get
from litestar.exceptions import NotFoundException
from litestar.response import Response

from service.audit.activity import head_position
from service.audit.events import EventFilter, search
from service.audit.moments import last_position_at
from service.audit.tickets import find_ticket
from service.digits import NotAWholeNumber, whole_number
from service.http import openapi
from service.http.auth import operator_guard
from service.http.console import Sources
from service.http.entries import SHORT, Entry, entry
from service.http.queries import BadParameter, Params
from service.http.templating import Pages, html
from service.ledger.intake import CONNECTION_TEST_ID
from service.storage import events as stored
from service.storage import window as streams
from statemachine.events import Outcome
from statemachine.projection import Ticket

__all__ = ["PAGE_SIZE", "TicketPages", "Timeline"]

#: Events per page of a ticket's timeline.
PAGE_SIZE = 50
_LATEST_TESTS = 20
#: Characters of the details, and tags, shown at most.
_SHOWN_DETAILS = 2_000
_SHOWN_TAGS = 50


class TicketPages(Controller):
    path = "/tickets"
    guards = [operator_guard]  # noqa: RUF012
    security = openapi.OPERATOR_SECURITY

    @get(
        "/{external_ticket_id:str}",
        summary="The ticket page behind every ticketUrl (HTML), now or as it was (as_of)",
        media_type=MediaType.HTML,
        responses=openapi.PAGE_ANSWERS,
        operation_class=openapi.documented(parameters=openapi.PAGE_PARAMETERS),
    )
    async def ticket_page(
        self, external_ticket_id: str, request: Request[Any, Any, Any], sources: Sources
    ) -> Response[Any]:
        try:
            params = Params(request.query_params, allowed={"page", "as_of"})
            page = _page_number(params.text("page"))
            as_of = params.moment("as_of")
        except BadParameter as exc:
            return exc.response()
        if external_ticket_id == CONNECTION_TEST_ID:
            shown = partial(_tests_html, sources.pages)
            return html(await sources.reads.run_then(shown, _connection_tests))
        shown = partial(_ticket_html, sources.pages, external_ticket_id, as_of)
        return html(await sources.reads.run_then(shown, _timeline, external_ticket_id, page, as_of))


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a ticket, now or at a moment, and its events on that page."""

    ticket: Ticket
    head: int
    page: int
    pages: int
    #: Events in the ticket's timeline (up to the moment, with `as_of`).
    count: int
    entries: list[Entry]
    #: The log position the ticket is shown at; None: now.
    as_of: int | None
    recorded_at: str | None
    earlier: int | None
    later: int | None
    tags: list[tuple[str, str]]
    more_tags: int
    details: str
    details_cut: bool
    short: int

    def link(self, page: int) -> str:
        query = {"page": page} | ({"as_of": self.as_of} if self.as_of is not None else {})
        return "?" + urlencode(query)


def _ticket_html(
    pages: Pages, external_ticket_id: str, as_of: int | str | None, timeline: Timeline | None
) -> bytes:
    if timeline is None:
        when = "" if as_of is None else " at that moment"
        raise NotFoundException(f"no ticket {external_ticket_id!r}{when}")
    if timeline.page > timeline.pages:
        raise NotFoundException(
            f"ticket {external_ticket_id!r} has {timeline.pages} page(s) of events"
        )
    return pages.render("ticket.html", head=timeline.head, section="tickets", t=timeline)


def _tests_html(pages: Pages, found: tuple[list[Entry], int]) -> bytes:
    tests, head = found
    return pages.render(
        "tests.html", head=head, section="tickets", number=CONNECTION_TEST_ID, events=tests
    )


def _connection_tests(db: sqlite3.Connection) -> tuple[list[Entry], int]:
    """The latest connection tests N-central ran, newest first."""
    where = EventFilter(outcome=Outcome.CONNECTION_TEST.value)
    events = search(db, where, order="desc", limit=_LATEST_TESTS).events
    # Each names its test ticket (none of them exists, so none is linked).
    return [entry(e, names={}) for e in events], head_position(db)


def _timeline(
    db: sqlite3.Connection, external_ticket_id: str, page: int | None, as_of: int | str | None
) -> Timeline | None:
    """The ticket and its events on `page`, each shortened as soon as it is read."""
    position = None if as_of is None else last_position_at(db, as_of)
    ticket = find_ticket(db, external_ticket_id, as_of=position)
    if ticket is None:
        return None
    stream = ticket.ncentral_ticket_id
    if position is None:
        count = stored.stream_length(db, stream)
        earlier = later = None
    else:
        count = streams.version_at(db, stream, position)
        earlier = streams.stream_step(db, stream, count - 1) if count > 1 else None
        later = streams.stream_step(db, stream, count + 1)
    pages = max(1, -(-count // PAGE_SIZE))
    # Now: the story from its start. At a moment: the page that ends at that moment.
    page = page or (pages if position is not None else 1)
    first = (page - 1) * PAGE_SIZE + 1
    # A ticket's events are numbered 1, 2, 3... by stream_version: a page is a range of it.
    last = min(first + PAGE_SIZE - 1, count)
    events = stored.stream_slice(db, stream, first, last)
    entries = [entry(event) for event in events]
    shown_at = stored.at(db, position) if position is not None else None
    tags = sorted(ticket.custom_tags.items())
    return Timeline(
        ticket=ticket,
        head=head_position(db),
        page=page,
        pages=pages,
        count=count,
        entries=entries,
        as_of=position,
        recorded_at=shown_at.recorded_at if shown_at else None,
        earlier=earlier,
        later=later,
        tags=tags[:_SHOWN_TAGS],
        more_tags=max(len(tags) - _SHOWN_TAGS, 0),
        details=ticket.details[:_SHOWN_DETAILS],
        details_cut=len(ticket.details) > _SHOWN_DETAILS,
        short=SHORT,
    )


def _page_number(value: str | None) -> int | None:
    """`?page=`: ASCII digits only (int() would take '١٢'), 1 or more."""
    if value is None:
        return None
    try:
        number = whole_number(value, largest=10**9)
    except NotAWholeNumber:
        number = 0
    if number < 1:
        raise BadParameter("page", f"page={value[:40]!r}; expected a whole number from 1")
    return number

"""The page behind every `ticketUrl`: what a technician sees after clicking in N-central.

Everything that came from N-central is escaped; the page needs nothing from the internet
(styles inline, no scripts), and it reflows to one column on a phone. The timeline lists
every event of the ticket's stream, refused and repeated requests and callback attempts
included, because "why is this ticket still open?" is usually answered there.

N-central may send a megabyte with every request, so the page shows a bounded amount
whatever the ticket holds: the timeline comes `PAGE_SIZE` events at a time (oldest
first, `?page=N`), each value is cut to a few hundred characters, and whatever was cut
links to the whole event (`/api/events/{position}`) or the whole ticket
(`/api/tickets/{id}`). Events are read and shortened one at a time, so a page costs
the server one event's payload at most, never the page's worth.
"""

from __future__ import annotations

import sqlite3
from html import escape
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Controller, MediaType, Request, get
from litestar.exceptions import NotFoundException
from litestar.response import Response

from service.audit.events import EventFilter, search
from service.audit.tickets import find_ticket
from service.digits import NotAWholeNumber, whole_number
from service.http import openapi
from service.http.auth import operator_guard
from service.http.responses import problem_response
from service.ledger.intake import CONNECTION_TEST_ID
from service.storage import events as stored
from service.storage.readpool import ReadPool
from statemachine.events import Event, Outcome
from statemachine.projection import Ticket

__all__ = ["PAGE_SIZE", "TicketPages", "Timeline", "render_connection_tests", "render_ticket"]

#: Events per page of a ticket's timeline.
PAGE_SIZE = 50
_LATEST_TESTS = 20


class TicketPages(Controller):
    path = "/tickets"
    guards = [operator_guard]  # noqa: RUF012
    security = openapi.OPERATOR_SECURITY

    @get(
        "/{external_ticket_id:str}",
        summary="The ticket page behind every ticketUrl (HTML), its timeline paged",
        media_type=MediaType.HTML,
        responses=openapi.PAGE_ANSWERS,
        operation_class=openapi.documented(parameters=openapi.PAGE_PARAMETERS),
    )
    async def ticket_page(
        self, external_ticket_id: str, request: Request[Any, Any, Any], reads: ReadPool
    ) -> Response[Any]:
        if external_ticket_id == CONNECTION_TEST_ID:
            return _html(render_connection_tests(await reads.run(_connection_tests)))
        asked = request.query_params.get("page")
        page = _page_number(asked)
        if page is None:
            detail = f"page={_cut(asked or '', 40)!r}; expected a whole number from 1"
            return problem_response(400, "Bad query parameter", detail, parameter="page")
        timeline = await reads.run(_timeline, external_ticket_id, page)
        if timeline is None:
            raise NotFoundException(f"no ticket {external_ticket_id!r}")
        if page > timeline.pages:
            raise NotFoundException(
                f"ticket {external_ticket_id!r} has {timeline.pages} page(s) of events"
            )
        return _html(render_ticket(timeline))


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a ticket: the ticket, and its events on that page, already rendered."""

    ticket: Ticket
    page: int
    pages: int
    #: Events in the ticket's whole timeline.
    count: int
    entries: list[str]


def render_ticket(timeline: Timeline) -> str:
    ticket = timeline.ticket
    whole = f"../api/tickets/{quote(ticket.external_ticket_id)}"
    tags = sorted(ticket.custom_tags.items())
    rows = "".join(
        f"<tr><th>{escape(_cut(k, _SHORT))}</th><td>{escape(_cut(v, _SHORT))}</td></tr>"
        for k, v in tags[:_SHOWN_TAGS]
    )
    if len(tags) > _SHOWN_TAGS:
        rows += (
            f'<tr><td colspan="2">and {len(tags) - _SHOWN_TAGS} more:'
            f' <a href="{whole}">the whole ticket</a></td></tr>'
        )
    details_cut = ""
    if len(ticket.details) > _SHOWN_DETAILS:
        details_cut = (
            f'<p class="cut" id="details-cut">{_SHOWN_DETAILS:,} of {len(ticket.details):,}'
            f' characters shown: <a href="{whole}">the whole ticket</a></p>'
        )
    return _PAGE.format(
        number=escape(ticket.external_ticket_id),
        title=escape(_cut(ticket.title, _SHORT)),
        state=escape(ticket.state.value),
        ncentral=escape(ticket.ncentral_ticket_id),
        created=_time(ticket.created_at),
        updated=_time(ticket.updated_at),
        details=escape(_cut(ticket.details, _SHOWN_DETAILS)),
        details_cut=details_cut,
        tags=rows or '<tr><td colspan="2">none</td></tr>',
        count=timeline.count,
        pages=_pager(timeline.page, timeline.pages),
        timeline="".join(timeline.entries),
        style=_STYLE,
    )


def render_connection_tests(events: list[Event]) -> str:
    """The page behind the ticketUrl answered to N-central's "Test Connection"."""
    return _TESTS_PAGE.format(
        number=escape(CONNECTION_TEST_ID),
        count=len(events),
        limit=_LATEST_TESTS,
        timeline="".join(_entry(e, show_ticket=True) for e in events) or "<li>none yet</li>",
        style=_STYLE,
    )


#: Characters shown of any one value N-central sent (a title, a tag, a field of a payload).
_SHORT = 300
#: Characters shown of one event's payload, of the details, and tags shown, at most.
_SHOWN_PAYLOAD = 3_000
_SHOWN_DETAILS = 2_000
_SHOWN_TAGS = 50
#: Items shown of one JSON object or array in a payload, and levels of nesting.
_MOST = 50
_DEEPEST = 20


_OUTCOME_CLASS = {
    "accepted": "ok",
    "recorded": "ok",
    "duplicate": "info",
    "existing": "info",
    "connection_test": "info",
    "rejected": "bad",
    "not_found": "bad",
    "mismatch": "bad",
    "invalid": "bad",
}


def _html(page: str) -> Response[str]:
    """Litestar adds the charset; its Content-Security-Policy is `headers.PAGE_CSP`."""
    return Response(page, media_type=MediaType.HTML)


def _connection_tests(db: sqlite3.Connection) -> list[Event]:
    """The latest connection tests N-central ran, newest first."""
    where = EventFilter(outcome=Outcome.CONNECTION_TEST.value)
    return search(db, where, order="desc", limit=_LATEST_TESTS).events


def _timeline(db: sqlite3.Connection, external_ticket_id: str, page: int) -> Timeline | None:
    """The ticket and its events on `page`, each shortened as soon as it is read."""
    ticket = find_ticket(db, external_ticket_id)
    if ticket is None:
        return None
    count = stored.stream_length(db, ticket.ncentral_ticket_id)
    first = (page - 1) * PAGE_SIZE + 1
    # A ticket's events are numbered 1, 2, 3... by stream_version: a page is a range of it.
    events = stored.stream_slice(db, ticket.ncentral_ticket_id, first, first + PAGE_SIZE - 1)
    return Timeline(
        ticket=ticket,
        page=page,
        pages=max(1, -(-count // PAGE_SIZE)),
        count=count,
        entries=[_entry(event) for event in events],
    )


def _page_number(value: str | None) -> int | None:
    """`?page=`: ASCII digits only (int() would take '١٢'), 1 or more; None if unusable."""
    if value is None:
        return 1
    try:
        number = whole_number(value, largest=10**9)
    except NotAWholeNumber:
        return None
    return number if number >= 1 else None


def _pager(page: int, pages: int) -> str:
    """Page N of M, with links to the first, earlier, later and latest pages."""
    links = [f"Page {page} of {pages}"]
    if page > 1:
        links += [
            '<a href="?page=1" rel="first">first</a>',
            f'<a href="?page={page - 1}" rel="prev">← earlier</a>',
        ]
    if page < pages:
        links += [
            f'<a href="?page={page + 1}" rel="next">later →</a>',
            f'<a href="?page={pages}" rel="last">latest</a>',
        ]
    return " · ".join(links)


def _entry(event: Event, *, show_ticket: bool = False) -> str:
    ticket = f"<span>{escape(event.ticket_id or '')}</span>" if show_ticket else ""
    states = ""
    if event.state_before and event.state_after:
        states = f"{escape(event.state_before)} → {escape(event.state_after)}"
    answer = _answer_status(event.response)
    css = _OUTCOME_CLASS.get(event.outcome, "info")
    preview, cut = _preview(event.payload)
    whole = ""
    if cut:
        whole = (
            f'<p class="cut">shortened: <a href="../api/events/{event.position}">the whole'
            f" event ({len(event.payload):,} characters)</a></p>"
        )
    return (
        f'<li class="event" id="event-{event.position}">'
        f'<div class="line"><span class="action">{escape(event.action)}</span>'
        f'<span class="outcome {css}">{escape(event.outcome)}</span>{ticket}'
        f'<span class="states">{states}</span></div>'
        f'<div class="meta">{_time(event.recorded_at)} · #{event.position}'
        f" · by {escape(event.actor)}{answer}</div>"
        f"<details><summary>what arrived</summary><pre>{escape(preview)}</pre>{whole}"
        f"</details></li>"
    )


def _answer_status(response: str | None) -> str:
    if response is None:
        return ""
    try:
        status = msgspec.json.decode(response).get("status")
    except (msgspec.DecodeError, AttributeError):
        return ""
    return f" · answered {escape(str(status))}"


def _preview(payload: str) -> tuple[str, bool]:
    """The payload as shown, pretty-printed and shortened; True if anything was cut."""
    try:
        value = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        shown = _cut(payload, _SHOWN_PAYLOAD)
        return shown, len(shown) < len(payload)
    short, cut = _shortened(value, 0)
    text = msgspec.json.format(msgspec.json.encode(short), indent=2).decode()
    shown = _cut(text, _SHOWN_PAYLOAD)
    return shown, cut or len(shown) < len(text)


def _shortened(value: Any, depth: int) -> tuple[Any, bool]:
    """`value` with every string cut to _SHORT characters and every container to _MOST
    items, _DEEPEST levels down at most; True if anything was cut."""
    if isinstance(value, str):
        return _cut(value, _SHORT), len(value) > _SHORT
    if not isinstance(value, dict | list):
        return value, False
    if depth >= _DEEPEST:
        return "…", True
    items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    cut = len(items) > _MOST
    kept: list[tuple[Any, Any]] = []
    for key, item in items[:_MOST]:
        short, item_cut = _shortened(item, depth + 1)
        cut = cut or item_cut or (isinstance(key, str) and len(key) > _SHORT)
        kept.append((_cut(key, _SHORT) if isinstance(key, str) else key, short))
    if isinstance(value, dict):
        return dict(kept), cut
    return [item for _, item in kept], cut


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _time(iso: str) -> str:
    shown = iso.replace("T", " ").removesuffix("Z")[:19] + " UTC"
    return f'<time datetime="{escape(iso)}">{escape(shown)}</time>'


_STYLE = """body{font:16px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;
color:#1b1b1b;background:#fff}
h1{font-size:1.4rem;margin:.2rem 0 1rem;overflow-wrap:anywhere}
h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
.state{display:inline-block;padding:.1rem .6rem;border-radius:1rem;background:#e8eef8;
font-weight:600}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.8rem;border-radius:.4rem;
overflow-wrap:anywhere;margin:.3rem 0}
table{border-collapse:collapse} th,td{text-align:left;padding:.2rem .8rem .2rem 0;
vertical-align:top;overflow-wrap:anywhere}
ol{list-style:none;padding:0;margin:0}
.event{border-left:3px solid #c9d3e3;padding:.3rem 0 .5rem .8rem;margin:0 0 .4rem}
.line{display:flex;flex-wrap:wrap;gap:.3rem .7rem;align-items:baseline}
.action{font-weight:600} .meta{color:#555;font-size:.88rem}
.outcome{padding:0 .45rem;border-radius:.3rem;font-size:.88rem}
.ok{background:#e3f4e6} .info{background:#eef0f3} .bad{background:#fbe3e3}
summary{cursor:pointer;color:#2a4d8f;font-size:.88rem}
.cut{font-size:.88rem;margin:.2rem 0} nav{margin:.4rem 0 .8rem}
@media (max-width:40rem){body{padding:.6rem} h1{font-size:1.2rem}}
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{number} · {title}</title>
<style>
{style}</style></head><body>
<p>{number} · N-central ticket {ncentral}</p>
<h1 id="title">{title}</h1>
<p>State: <span class="state" id="state">{state}</span></p>
<p>Created {created} · updated {updated}</p>
<h2>Details</h2>
<pre id="details">{details}</pre>{details_cut}
<h2>Custom tags</h2>
<table id="tags">{tags}</table>
<h2>Timeline ({count} events)</h2>
<nav id="pages">{pages}</nav>
<ol id="timeline">{timeline}</ol>
</body></html>
"""

_TESTS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{number} · N-central connection tests</title>
<style>
{style}</style></head><body>
<p>{number}</p>
<h1 id="title">N-central connection tests</h1>
<p>N-central's <em>Test Connection</em> sends a CREATE for a <code>TEST_NC_TICKET_ID…</code>
ticket; psa-ledger answers it with this page's address and creates no ticket. The tests
that reached psa-ledger, newest first (at most {limit}; {count} shown):</p>
<ol id="timeline">{timeline}</ol>
</body></html>
"""

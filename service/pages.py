"""The page behind every `ticketUrl`: what a technician sees after clicking in N-central.

Everything that came from N-central is escaped; the page needs nothing from the internet
(styles inline, no scripts), and it reflows to one column on a phone. The timeline lists
every event of the ticket's stream, refused and repeated requests and callback attempts
included, because "why is this ticket still open?" is usually answered there.
"""

from __future__ import annotations

import sqlite3
from html import escape

import msgspec
from litestar import Controller, MediaType, get
from litestar.exceptions import NotFoundException
from litestar.response import Response

from service import openapi, store
from service.auth import operator_guard
from service.eventsearch import EventFilter, search
from service.ncentral import CONNECTION_TEST_ID
from service.readpool import ReadPool
from service.ticketsearch import find_ticket
from statemachine.events import Event, Outcome
from statemachine.projection import Ticket

__all__ = ["TicketPages", "render_connection_tests", "render_ticket"]

_LATEST_TESTS = 20


class TicketPages(Controller):
    path = "/tickets"
    guards = [operator_guard]  # noqa: RUF012
    security = openapi.OPERATOR_SECURITY

    @get(
        "/{external_ticket_id:str}",
        summary="The ticket page behind every ticketUrl (HTML)",
        media_type=MediaType.HTML,
        responses=openapi.PAGE_ANSWERS,
        operation_class=openapi.documented(),
    )
    async def ticket_page(self, external_ticket_id: str, reads: ReadPool) -> Response[str]:
        if external_ticket_id == CONNECTION_TEST_ID:
            return _html(render_connection_tests(await reads.run(_connection_tests)))
        found = await reads.run(_ticket_and_events, external_ticket_id)
        if found is None:
            raise NotFoundException(f"no ticket {external_ticket_id!r}")
        return _html(render_ticket(*found))


def render_ticket(ticket: Ticket, events: list[Event]) -> str:
    tags = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
        for k, v in sorted(ticket.custom_tags.items())
    )
    return _PAGE.format(
        number=escape(ticket.external_ticket_id),
        title=escape(ticket.title),
        state=escape(ticket.state.value),
        ncentral=escape(ticket.ncentral_ticket_id),
        created=_time(ticket.created_at),
        updated=_time(ticket.updated_at),
        details=escape(ticket.details),
        tags=tags or '<tr><td colspan="2">none</td></tr>',
        count=len(events),
        timeline="".join(_entry(e) for e in events),
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


def _ticket_and_events(
    db: sqlite3.Connection, external_ticket_id: str
) -> tuple[Ticket, list[Event]] | None:
    ticket = find_ticket(db, external_ticket_id)
    if ticket is None:
        return None
    rows = db.execute(
        f"SELECT {', '.join(store.EVENT_COLUMNS)} FROM events"
        " WHERE ticket_id = ? ORDER BY position",
        (ticket.ncentral_ticket_id,),
    )
    return ticket, [store.event_from_row(row) for row in rows]


def _entry(event: Event, *, show_ticket: bool = False) -> str:
    ticket = f"<span>{escape(event.ticket_id or '')}</span>" if show_ticket else ""
    states = ""
    if event.state_before and event.state_after:
        states = f"{escape(event.state_before)} → {escape(event.state_after)}"
    answer = _answer_status(event.response)
    css = _OUTCOME_CLASS.get(event.outcome, "info")
    return (
        f'<li class="event" id="event-{event.position}">'
        f'<div class="line"><span class="action">{escape(event.action)}</span>'
        f'<span class="outcome {css}">{escape(event.outcome)}</span>{ticket}'
        f'<span class="states">{states}</span></div>'
        f'<div class="meta">{_time(event.recorded_at)} · #{event.position}'
        f" · by {escape(event.actor)}{answer}</div>"
        f"<details><summary>what arrived</summary><pre>{escape(_pretty(event.payload))}</pre>"
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


def _pretty(payload: str) -> str:
    try:
        return msgspec.json.format(payload, indent=2)
    except msgspec.DecodeError:
        return payload


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
<pre id="details">{details}</pre>
<h2>Custom tags</h2>
<table id="tags">{tags}</table>
<h2>Timeline ({count} events)</h2>
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

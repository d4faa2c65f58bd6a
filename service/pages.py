"""The page behind every `ticketUrl`: what a technician sees after clicking in N-central.

Everything that came from N-central is escaped; the page needs nothing from the internet.
"""

from __future__ import annotations

from html import escape

from litestar import Controller, get
from litestar.exceptions import NotFoundException
from litestar.response import Response

from service.auth import operator_guard
from service.queries import Reader
from statemachine.projection import Ticket

__all__ = ["TicketPages"]


class TicketPages(Controller):
    path = "/tickets"
    guards = [operator_guard]  # noqa: RUF012
    include_in_schema = False

    @get("/{external_ticket_id:str}")
    async def ticket_page(self, external_ticket_id: str, reader: Reader) -> Response[str]:
        ticket = await reader.ticket(external_ticket_id)
        if ticket is None:
            raise NotFoundException(f"no ticket {external_ticket_id!r}")
        return Response(render_ticket(ticket), media_type="text/html; charset=utf-8")


def render_ticket(ticket: Ticket) -> str:
    tags = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
        for k, v in sorted(ticket.custom_tags.items())
    )
    return _PAGE.format(
        number=escape(ticket.external_ticket_id),
        title=escape(ticket.title),
        state=escape(ticket.state.value),
        ncentral=escape(ticket.ncentral_ticket_id),
        created=escape(ticket.created_at),
        updated=escape(ticket.updated_at),
        details=escape(ticket.details),
        tags=tags or '<tr><td colspan="2">none</td></tr>',
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{number} · {title}</title>
<style>
body{{font:16px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#1b1b1b}}
h1{{font-size:1.4rem;margin:.2rem 0 1rem}} .state{{display:inline-block;padding:.1rem .6rem;
border-radius:1rem;background:#e8eef8;font-weight:600}} pre{{white-space:pre-wrap;
background:#f6f6f6;padding:.8rem;border-radius:.4rem;overflow-wrap:anywhere}}
table{{border-collapse:collapse}} th,td{{text-align:left;padding:.2rem .8rem .2rem 0;
vertical-align:top}} dt{{font-weight:600}}
</style></head><body>
<p>{number} · N-central ticket {ncentral}</p>
<h1 id="title">{title}</h1>
<p>State: <span class="state" id="state">{state}</span></p>
<p>Created {created} · updated {updated}</p>
<h2>Details</h2>
<pre id="details">{details}</pre>
<h2>Custom tags</h2>
<table id="tags">{tags}</table>
</body></html>
"""

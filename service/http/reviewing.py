"""The review page's reads, and its rows as the page shows them, in one worker-thread call.

The page reads in one snapshot: the window's counts (`audit.window.review`), a page of
*What changed*, a page of the timeline, the names of the tickets on both, the log's head.
Every cell of the charts, of the timeline and of *What changed* is worked out here, as
plain strings in tuples the template unpacks (as `listing` does for the ticket list):
Jinja pays for each attribute it looks up and each filter it calls, and this page shows
a few hundred cells. Values stay text; the template escapes every one of them.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

import msgspec

from service.audit.activity import head_position
from service.audit.events import EventFilter, timeline
from service.audit.replay import Change
from service.audit.startpoints import Startpoints
from service.audit.window import OpenTally, Review, Rollups, changes, review
from service.http.charts import Charts, charts
from service.http.entries import Entry, entry
from service.http.templating import cut, in_path
from service.storage import tickets as stored_tickets

__all__ = ["EVENTS_PER_PAGE", "TICKETS_PER_PAGE", "Changed", "ReviewPage", "review_page"]

#: Events on one page of the window's timeline; tickets on one page of *What changed*
#: (each with a row per field that changed).
EVENTS_PER_PAGE = 50
TICKETS_PER_PAGE = 25


class Changed(NamedTuple):
    """One row of *What changed* (a tuple, so that the template unpacks it in its loop)."""

    ticket_id: str
    field: str
    #: On a ticket's first row only (else empty): its page, externalTicketId, title,
    #: ncentralTicketId, and its page as it was at the window's start (empty when it did
    #: not exist then) and at its end.
    href: str
    external: str
    title: str
    ncentral: str
    at_start: str
    at_end: str
    before: str
    after: str


class ReviewPage(msgspec.Struct, frozen=True):
    review: Review
    charts: Charts
    changed: list[Changed]
    #: The ncentralTicketId the next page of *What changed* starts after, if any.
    changed_next: str | None
    entries: list[Entry]
    #: The timeline's next page's cursor, if any.
    entries_next: str | None
    head: int


def review_page(
    db: sqlite3.Connection,
    since: str,
    until: str,
    where: EventFilter,
    *,
    cursor: str | None,
    changes_after: str | None,
    tally: OpenTally,
    rollups: Rollups,
    starts: Startpoints,
) -> ReviewPage:
    """The page for the window `since`..`until`: its timeline narrowed by `where` (the
    same window and any filters), from `cursor`; *What changed* from the ticket after
    `changes_after`."""
    window = review(db, since, until, tally=tally, kept=rollups)
    changed = changes(
        db, window, after=changes_after, limit=TICKETS_PER_PAGE, ticket=where.ticket, kept=starts
    )
    page = timeline(
        db, where, limit=EVENTS_PER_PAGE, cursor=cursor, within=(window.first, window.last)
    )
    wanted = {e.ticket_id for e in page.events if e.ticket_id}
    wanted.update(c.ticket_id for c in changed.rows)
    names = stored_tickets.names(db, sorted(wanted))
    return ReviewPage(
        window,
        charts(window),
        changed_rows(changed.rows, names, window),
        changed.next,
        [entry(e, names) for e in page.events],
        page.next,
        head_position(db),
    )


def changed_rows(
    rows: list[Change], names: dict[str, tuple[str, str]], window: Review
) -> list[Changed]:
    """Diff's rows as the page shows them; a ticket's first row names and links it."""
    shown = []
    previous = None
    for row in rows:
        first = row.ticket_id != previous
        previous = row.ticket_id
        before = "did not exist" if row.before is None else cut(row.before, 300)
        shown.append(
            Changed(
                row.ticket_id,
                row.field,
                *(_ticket_cells(row, names, window) if first else _NO_CELLS),
                before,
                cut(row.after, 300),
            )
        )
    return shown


#: A ticket's row after its first: it is named and linked once.
_NO_CELLS = ("",) * 6


def _ticket_cells(
    row: Change, names: dict[str, tuple[str, str]], window: Review
) -> tuple[str, str, str, str, str, str]:
    """The ticket's page, externalTicketId, title, ncentralTicketId, and its page at
    the window's start (empty when it did not exist then) and at its end."""
    href = f"/tickets/{in_path(row.external_ticket_id)}"
    known = names.get(row.ticket_id)
    title = cut(known[1], 80) if known else ""
    existed = row.field != "state" or row.before is not None
    at_start = f"{href}?as_of={window.first - 1}" if existed else ""
    return (
        href,
        row.external_ticket_id,
        title,
        cut(row.ticket_id, 40),
        at_start,
        f"{href}?as_of={window.last}",
    )

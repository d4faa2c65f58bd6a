"""The operator console: tickets now (`/`), an incident window (`/review`), callbacks.

Server-rendered pages with no script: filters are plain GET forms, retries are POST
forms that the same-origin guard admits only from our own pages. Every read goes through
the audit functions the API and the shell use (service.audit), each page in one read
snapshot, so the header's head position and the page agree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, MediaType, Request, get, post
from litestar.response import Redirect, Response, Stream

from service.audit.activity import (
    ActivityFilter,
    StateCounts,
    head_position,
    recent_activity,
)
from service.audit.cursors import BadCursor
from service.audit.events import (
    ACTIONS,
    OUTCOMES,
    EventFilter,
    Page,
    cursor_position,
    normalise_action,
    search,
)
from service.audit.export import csv_lines, jsonl_lines
from service.audit.shapes import EventView, event_view
from service.audit.startpoints import Startpoints
from service.audit.window import OpenTally, Rollups
from service.callbacks.retry import (
    AlreadyDelivered,
    NoCallback,
    listed,
    retry_callback,
    retry_dead,
)
from service.http import openapi
from service.http.auth import operator_guard
from service.http.crosssite import same_origin_guard
from service.http.entries import Entry, entry
from service.http.listing import Listed, shown_rows
from service.http.queries import BadParameter, Params
from service.http.responses import problem_response
from service.http.reviewing import TICKETS_PER_PAGE as CHANGES_PER_PAGE
from service.http.reviewing import ReviewPage, review_page
from service.http.templating import Pages, html, in_query, shown_time
from service.ledger.outbox import Callback
from service.ledger.writer import Ledger
from service.storage import tickets as stored_tickets
from service.storage.readpool import ReadPool
from service.storage.textindex import TextIndex
from service.timestamps import format_utc
from statemachine.ticket import State

__all__ = ["CallbackPages", "Console", "Sources"]

#: Tickets on one page of the list.
TICKETS_PER_PAGE = 50
_ATTEMPTS_SHOWN = 5
_STATES = [s.value for s in State if s is not State.NEW]
_SHORTCUTS = [("Last hour", timedelta(hours=1)), ("24 hours", timedelta(days=1)),
              ("7 days", timedelta(days=7))]  # fmt: skip
_ACTIONS = sorted(ACTIONS)
_OUTCOMES = sorted(OUTCOMES)
#: The review's parameters that narrow its timeline and downloads.
_FILTERS = frozenset({"ticket", "action", "outcome", "actor"})


class Sources(msgspec.Struct, frozen=True):
    """What the console's pages read and are rendered with: the read pool, the summaries
    of the log kept in memory and the templates, handed over as one dependency. Litestar
    resolves two or more of a handler's dependencies concurrently, a task each: that cost
    the event loop ~0.1 ms a page."""

    reads: ReadPool
    pages: Pages
    counts: StateCounts
    tally: OpenTally
    rollups: Rollups
    starts: Startpoints
    texts: TextIndex


class Console(Controller):
    guards = [operator_guard]  # noqa: RUF012
    security = openapi.OPERATOR_SECURITY
    tags = ["console"]  # noqa: RUF012

    @get(
        "/",
        summary="The console: tickets now, counted by state, filtered and paged (HTML)",
        media_type=MediaType.HTML,
        responses=openapi.CONSOLE_ANSWERS,
        operation_class=openapi.documented(parameters=openapi.CONSOLE_PARAMETERS),
    )
    async def tickets_now(
        self,
        request: Request[Any, Any, Any],
        sources: Sources,
    ) -> Response[Any]:
        try:
            p = Params(
                request.query_params,
                allowed={"state", "tag", "ncentral", "text", "cursor"},
                repeatable=frozenset({"tag"}),
                blank_is_absent=True,
            )
            where = ActivityFilter(
                state=p.choice("state", set(_STATES), str.lower),
                tags=p.tags("tag"),
                ncentral_ticket_id=p.text("ncentral"),
                text=p.text("text"),
            )
            cursor = p.text("cursor")
        except BadParameter as exc:
            return exc.response()
        query = [(k, v) for k, v in request.query_params.items() if k != "cursor" and v]
        shown = partial(_tickets_html, sources.pages, where, query)
        try:
            return html(
                await sources.reads.run_then(
                    shown, _tickets_now, where, cursor, sources.counts, sources.texts
                )
            )
        except BadCursor as exc:
            return BadParameter("cursor", f"cursor: {exc}").response()

    @get(
        "/review",
        summary="An incident window: timeline, charts, what changed, downloads (HTML)",
        media_type=MediaType.HTML,
        responses=openapi.CONSOLE_ANSWERS,
        operation_class=openapi.documented(parameters=openapi.REVIEW_PARAMETERS),
    )
    async def review_window(
        self,
        request: Request[Any, Any, Any],
        sources: Sources,
    ) -> Response[Any]:
        try:
            query = _WindowQuery.parse(request.query_params, paged=True)
        except BadParameter as exc:
            return exc.response()
        # In the order sent, as `api._next_url` keeps them (not `multi_items()`'s set order).
        params = list(request.query_params.items())
        shown = partial(_review_html, sources.pages, query, params)
        return html(
            await sources.reads.run_then(
                shown,
                review_page,
                query.since,
                query.until,
                query.where,
                cursor=query.cursor,
                changes_after=query.changes,
                tally=sources.tally,
                rollups=sources.rollups,
                starts=sources.starts,
            )
        )

    @get(
        "/review/events.csv",
        summary="The window's events as CSV: the bytes of `psa-ledger export --format csv`",
        media_type="text/csv",
        responses=openapi.CSV_DOWNLOAD_ANSWERS,
        operation_class=openapi.documented(parameters=openapi.DOWNLOAD_PARAMETERS),
    )
    async def window_csv(self, request: Request[Any, Any, Any], reads: ReadPool) -> Response[Any]:
        return await _download(request, reads, "csv")

    @get(
        "/review/events.jsonl",
        summary="The window's events as JSON lines: the bytes of `psa-ledger export`",
        media_type=openapi.JSONL,
        responses=openapi.JSONL_DOWNLOAD_ANSWERS,
        operation_class=openapi.documented(parameters=openapi.DOWNLOAD_PARAMETERS),
    )
    async def window_jsonl(self, request: Request[Any, Any, Any], reads: ReadPool) -> Response[Any]:
        return await _download(request, reads, "jsonl")


class CallbackPages(Controller):
    path = "/callbacks"
    # A cross-site POST is refused before its credentials are even looked at; a form on
    # our own page sends Origin (and Sec-Fetch-Site: same-origin), so its buttons work.
    guards = [same_origin_guard, operator_guard]  # noqa: RUF012
    security = openapi.OPERATOR_SECURITY
    tags = ["console"]  # noqa: RUF012

    @get(
        "/",
        summary="Callbacks owed and dead, their attempts, and retry buttons (HTML)",
        media_type=MediaType.HTML,
        responses=openapi.CONSOLE_ANSWERS,
        operation_class=openapi.documented(parameters=openapi.CALLBACK_PAGE_PARAMETERS),
    )
    async def callbacks_page(
        self, request: Request[Any, Any, Any], sources: Sources
    ) -> Response[Any]:
        try:
            p = Params(request.query_params, allowed={"retried"}, blank_is_absent=True)
            retried = p.text("retried")
        except BadParameter as exc:
            return exc.response()
        shown = partial(_callbacks_html, sources.pages, retried)
        return html(await sources.reads.run_then(shown, _callbacks))

    @post(
        "/{ncentral_ticket_id:str}/retry",
        summary="Retry one callback now (from the page's button); answers with the page",
        status_code=303,
        responses=openapi.PAGE_RETRY_ANSWERS,
        operation_class=openapi.documented(),
    )
    async def retry_one(
        self,
        ncentral_ticket_id: str,
        request: Request[Any, Any, Any],
        ledger: Ledger,
        reads: ReadPool,
    ) -> Response[Any]:
        try:
            await retry_callback(ledger, reads, ncentral_ticket_id, request.state.actor)
        except NoCallback as exc:
            return problem_response(404, "No callback", str(exc), ticket=ncentral_ticket_id)
        except AlreadyDelivered as exc:
            return problem_response(409, "Already delivered", str(exc), ticket=ncentral_ticket_id)
        return Redirect("/callbacks?" + urlencode({"retried": ncentral_ticket_id}), status_code=303)

    @post(
        "/retry-dead",
        summary="Retry every dead-lettered callback (from the page's button)",
        status_code=303,
        responses=openapi.PAGE_RETRY_ANSWERS,
        operation_class=openapi.documented(),
    )
    async def retry_all_dead(
        self, request: Request[Any, Any, Any], ledger: Ledger, reads: ReadPool
    ) -> Response[Any]:
        done = await retry_dead(ledger, reads, request.state.actor)
        return Redirect(
            "/callbacks?" + urlencode({"retried": f"{len(done)} dead"}), status_code=303
        )


class _WindowQuery(msgspec.Struct, frozen=True, kw_only=True):
    since: str
    until: str
    where: EventFilter
    cursor: str | None
    #: What changed goes on after this ncentralTicketId.
    changes: str | None = None

    @classmethod
    def parse(cls, params: Any, *, paged: bool) -> _WindowQuery:
        allowed = {"from", "to", "ticket", "action", "outcome", "actor"} | (
            {"cursor", "changes"} if paged else set()
        )
        p = Params(params, allowed=allowed, blank_is_absent=True)
        now = datetime.now(UTC)
        until = p.time("to") or format_utc(now)
        since = p.time("from") or format_utc(now - timedelta(days=1))
        if since > until:
            raise BadParameter("to", f"to={until} is before from={since}")
        where = EventFilter(
            ticket=p.text("ticket"),
            action=p.choice("action", ACTIONS, normalise_action),
            outcome=p.choice("outcome", OUTCOMES, str.lower),
            actor=p.text("actor"),
            since=since,
            until=until,
        )
        cursor = p.text("cursor") if paged else None
        if cursor is not None:
            try:
                cursor_position(cursor, "asc")
            except BadCursor as exc:
                raise BadParameter("cursor", f"cursor: {exc}") from None
        changes = p.text("changes") if paged else None
        return cls(since=since, until=until, where=where, cursor=cursor, changes=changes)


def _tickets_html(
    pages: Pages,
    where: ActivityFilter,
    query: list[tuple[str, str]],
    found: tuple[list[Listed], str | None, dict[str, int], int],
) -> bytes:
    rows, next_cursor, by_state, head = found
    return pages.render(
        "index.html",
        head=head,
        section="tickets",
        where=where,
        tag_text=" ".join(f"{k}:{v}" for k, v in where.tags),
        states=_STATES,
        counts=by_state,
        total=sum(by_state.values()),
        rows=rows,
        next_link=_link("/", query, next_cursor),
    )


def _review_html(
    pages: Pages, query: _WindowQuery, params: list[tuple[str, str]], window: ReviewPage
) -> bytes:
    keep = [(k, v) for k, v in params if k != "cursor" and v]
    keep_changes = [(k, v) for k, v in params if k != "changes" and v]
    where = query.where
    now = datetime.now(UTC)
    until_now = format_utc(now)
    return pages.render(
        "review.html",
        head=window.head,
        section="review",
        q=query,
        r=window.review,
        c=window.charts,
        entries=window.entries,
        changed=window.changed,
        changes_next=_link("/review", keep_changes, window.changed_next, "changes"),
        per_page=CHANGES_PER_PAGE,
        next_link=_link("/review", keep, window.entries_next),
        bounds=in_query((("from", query.since), ("to", query.until))),
        filters=in_query((k, v) for k, v in keep if k in _FILTERS),
        shortcuts=[
            (label, in_query((("from", format_utc(now - span)), ("to", until_now))))
            for label, span in _SHORTCUTS
        ],
        actions=[(a, a == where.action) for a in _ACTIONS],
        outcomes=[(o, o == where.outcome) for o in _OUTCOMES],
        since=(_local_input(query.since), shown_time(query.since)),
        until=(_local_input(query.until), shown_time(query.until)),
    )


def _callbacks_html(pages: Pages, retried: str | None, found: tuple[list[_Owed], int]) -> bytes:
    owed, head = found
    return pages.render(
        "callbacks.html", head=head, section="callbacks", owed=owed, retried=retried
    )


def _tickets_now(
    db: sqlite3.Connection,
    where: ActivityFilter,
    cursor: str | None,
    counts: StateCounts,
    texts: TextIndex,
) -> tuple[list[Listed], str | None, dict[str, int], int]:
    """A page of the list, its rows made ready to show here in the worker thread."""
    found = recent_activity(db, where, limit=TICKETS_PER_PAGE, cursor=cursor, texts=texts)
    return shown_rows(found.rows), found.next, counts(db), head_position(db)


class _Owed(msgspec.Struct, frozen=True):
    callback: Callback
    title: str
    attempts: list[Entry]


def _callbacks(db: sqlite3.Connection) -> tuple[list[_Owed], int]:
    owed = []
    callbacks = listed(db)
    names = stored_tickets.names(db, [c.ncentral_ticket_id for c in callbacks])
    for callback in callbacks:
        where = EventFilter(ticket=callback.ncentral_ticket_id, action="callback_attempted")
        attempts = search(db, where, order="desc", limit=_ATTEMPTS_SHOWN).events
        title = names.get(callback.ncentral_ticket_id, ("", ""))[1]
        owed.append(_Owed(callback, title, [entry(e) for e in attempts]))
    return owed, head_position(db)


async def _download(request: Request[Any, Any, Any], reads: ReadPool, fmt: str) -> Response[Any]:
    """The window's events streamed a page at a time, as `psa-ledger export` writes them."""
    try:
        query = _WindowQuery.parse(request.query_params, paged=False)
    except BadParameter as exc:
        return exc.response()

    async def lines() -> AsyncIterator[bytes]:
        fields = EventView.__struct_fields__
        cursor: str | None = None
        first = True
        while True:
            page: Page = await reads.run(search, query.where, limit=1000, cursor=cursor)
            rows = [event_view(e) for e in page.events]
            if fmt == "csv":
                chunk = csv_lines(fields, rows) if first else _rows_only(fields, rows)
            else:
                chunk = jsonl_lines(rows)
            yield "".join(chunk).encode()
            first = False
            if page.next is None:
                return
            cursor = page.next

    name = f"psa-ledger-{query.since}-{query.until}.{fmt}".replace(":", "")
    media = "text/csv; charset=utf-8" if fmt == "csv" else openapi.JSONL
    return Stream(
        lines(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _rows_only(fields: tuple[str, ...], rows: list[EventView]) -> Any:
    lines = csv_lines(fields, rows)
    next(lines)  # the header, already sent with the first page
    return lines


def _link(
    path: str, query: list[tuple[str, str]], cursor: str | None, name: str = "cursor"
) -> str | None:
    if cursor is None:
        return None
    return f"{path}?{in_query([*query, (name, cursor)])}"


def _local_input(iso: str) -> str:
    """A log time as a `datetime-local` input's value (UTC, to the second)."""
    return iso.removesuffix("Z")[:19]

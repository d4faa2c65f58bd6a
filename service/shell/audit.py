"""The auditor's shell tools: events, replay, diff, verify, export.

They open the log read-only (a SQLite file, or a PostgreSQL database), so they work while
the service runs, and each runs inside one read transaction: a long export or verify sees
the log as of one moment, not a mixture of before and after the writer's next batch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import msgspec

from service.audit.events import EventFilter, iter_matching, normalise_action
from service.audit.moments import (
    LAST_POSITION,
    BadMoment,
    first_position_from,
    last_position_at,
    parse_moment,
)
from service.audit.moments import parse_time as _parse_time
from service.audit.replay import changes_between, state_at, timeline
from service.audit.shapes import EventView, event_view, ticket_view
from service.audit.verify import verify as verify_log
from service.digits import NotAWholeNumber, whole_number
from service.shell import output
from service.shell.checkpoint import Unreadable
from service.shell.checkpoint import make as make_checkpoint
from service.shell.options import db_option
from service.shell.output import Column
from service.storage.backend import backend_for

__all__ = ["COMMANDS"]


class _EventCount(click.ParamType):
    """A count of events, 1 or more, read like every other number: ASCII digits only."""

    name = "count"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            count = whole_number(value)
        except NotAWholeNumber as exc:
            self.fail(str(exc), param, ctx)
        if count < 1:
            self.fail("must be at least 1", param, ctx)
        return count


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for name, help_text in reversed(_FILTERS):
        command = click.option(f"--{name}", default=None, help=help_text)(command)
    return command


_FILTERS = [
    ("ticket", "only this ncentralTicketId"),
    ("action", "only this action (CREATE, UPDATE, ..., identity_delivered, ...)"),
    ("outcome", "only this outcome (accepted, duplicate, rejected, ...)"),
    ("actor", "only events recorded for this credential"),
    ("since", "from this ISO-8601 time (inclusive)"),
    ("until", "up to this ISO-8601 time (inclusive)"),
]

_EVENT_COLUMNS = [
    Column("position", "position", 8),
    Column("recorded_at", "recorded_at", 27),
    Column("ticket", "ticket_id", 12),
    Column("action", "action", 22),
    Column("outcome", "outcome", 15),
    Column("before", "state_before", 8),
    Column("after", "state_after", 8),
    Column("actor", "actor", 10),
]
#: A replay step is an event with the ticket's number beside its ncentralTicketId.
_STEP_COLUMNS = [
    *_EVENT_COLUMNS[:3],
    Column("PSA", "external_ticket_id", 10),
    *_EVENT_COLUMNS[3:],
]
_TICKET_COLUMNS = [
    Column("ticket", "ncentral_ticket_id", 12),
    Column("PSA", "external_ticket_id", 10),
    Column("state", "state", 9),
    Column("updated_at", "updated_at", 27),
    Column("title", "title", 40),
]
_CHANGE_COLUMNS = [
    Column("ticket", "ticket_id", 12),
    Column("PSA", "external_ticket_id", 10),
    Column("field", "field", 12),
    Column("before", "before", 30),
    Column("after", "after", 30),
]


@click.command()
@db_option
@_filter_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "jsonl"]), default="table")
def events(db: str, fmt: str, **filters: str | None) -> None:
    """The log, filtered, oldest first."""
    with _reading(db) as conn:
        rows = (event_view(e) for e in iter_matching(conn, _event_filter(filters)))
        _write(fmt, _EVENT_COLUMNS, rows)


@click.command()
@db_option
@_filter_options
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.option(
    "--raw",
    is_flag=True,
    help="CSV: write every cell as logged; by default a cell starting with = + - @ TAB or CR"
    " gets a leading ' so a spreadsheet cannot run it as a formula",
)
def export(db: str, fmt: str, raw: bool, **filters: str | None) -> None:
    """The log, filtered, streamed as JSON lines or CSV (constant memory).

    JSON lines are always exactly what the log holds; so is CSV with --raw.
    """
    with _reading(db) as conn:
        rows = (event_view(e) for e in iter_matching(conn, _event_filter(filters)))
        if fmt == "csv":
            output.write_csv(sys.stdout, EventView.__struct_fields__, rows, raw=raw)
        else:
            output.write_jsonl(sys.stdout, rows)


@click.command()
@db_option
@click.option("--from", "start", default=None, help="window start: ISO-8601 time or position")
@click.option("--to", "end", default=None, help="window end: ISO-8601 time or position")
@click.option("--at", "at", default=None, help="print every ticket's state at this moment")
@click.option("--ticket", default=None, help="only this ncentralTicketId (window mode)")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table")
def replay(
    db: str,
    start: str | None,
    end: str | None,
    at: str | None,
    ticket: str | None,
    fmt: str,
) -> None:
    """Replay the log: a window's timeline (--from/--to) or every ticket at a moment (--at)."""
    if at is not None and (start or end):
        raise click.UsageError("give either --at, or --from/--to, not both")
    with _reading(db) as conn:
        if at is not None:
            position = last_position_at(conn, _moment("--at", at))
            tickets = state_at(conn, position)
            views = [ticket_view(t) for _, t in sorted(tickets.items())]
            if fmt == "json":
                _echo_json({"asOfPosition": position, "tickets": views})
            else:
                _write(fmt, _TICKET_COLUMNS, views)
            return
        if start is None and end is None:
            raise click.UsageError("give --from and/or --to (a window), or --at (a moment)")
        first = _window_start(conn, start)
        last = last_position_at(conn, _moment("--to", end)) if end else LAST_POSITION
        _write(fmt, _STEP_COLUMNS, timeline(conn, first, last, ticket=ticket))


@click.command()
@db_option
@click.argument("first")
@click.argument("second")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table")
def diff(db: str, first: str, second: str, fmt: str) -> None:
    """What changed in the tickets between two moments (ISO-8601 times or positions)."""
    with _reading(db) as conn:
        one = last_position_at(conn, _moment("FIRST", first))
        two = last_position_at(conn, _moment("SECOND", second))
        if one > two:
            one, two = two, one
        _write(fmt, _CHANGE_COLUMNS, changes_between(conn, one, two))


@click.command()
@db_option
@click.option(
    "--every",
    type=_EventCount(),
    default=100_000,
    show_default=True,
    help="report progress every N events",
)
def verify(db: str, every: int) -> None:
    """Walk the hash chain and re-derive every state and outcome; non-zero on the first flaw."""

    def progress(done: int, total: int) -> None:
        click.echo(f"verify: {done}/{total} events ({100 * done // max(total, 1)}%)", err=True)

    with _reading(db) as conn:
        report = verify_log(conn, progress=progress, every=every, workers=os.cpu_count() or 1)
    if report.ok:
        click.echo(f"verify: OK: {report.events} events, {report.tickets} tickets; chain intact")
        return
    first = report.findings[0]
    click.echo(f"verify: FAILED at position {first.position}: {first.problem}")
    for finding in report.findings[1:]:
        click.echo(f"  also at position {finding.position}: {finding.problem}")
    sys.exit(1)


@click.command()
@db_option
def checkpoint(db: str) -> None:
    """Store a checkpoint of every ticket now, for time travel to start from.

    The service makes one every PSA_LEDGER_CHECKPOINT_EVERY events the same way (through
    `python -m service.shell.checkpoint`, which loads less); run it by hand on a log that
    has none. It holds only the tickets changed since the latest checkpoint (a delta),
    unless a full one is due. Derived data only: the log itself is not written.
    """
    try:
        click.echo(make_checkpoint(db))
    except Unreadable as exc:
        raise click.ClickException(str(exc)) from None


COMMANDS = [events, replay, diff, verify, export, checkpoint]


@contextmanager
def _reading(db: str) -> Iterator[Any]:
    """A read-only connection inside one snapshot, with a clear message when it cannot open."""
    backend = backend_for(db)
    try:
        conn = backend.connect_sync(readonly=True)
    except backend.refusals as exc:
        raise click.ClickException(f"cannot read {backend.display}: {exc}") from None
    try:
        with backend.snapshot(conn):
            yield conn
    finally:
        conn.close()


def _event_filter(filters: dict[str, str | None]) -> EventFilter:
    action = filters.get("action")
    outcome = filters.get("outcome")
    return EventFilter(
        ticket=filters.get("ticket"),
        action=normalise_action(action) if action else None,
        outcome=outcome.lower() if outcome else None,
        actor=filters.get("actor"),
        since=_time("--since", filters.get("since")),
        until=_time("--until", filters.get("until")),
    )


def _time(flag: str, text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return _parse_time(text)
    except BadMoment as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None


def _moment(flag: str, text: str) -> int | str:
    try:
        return parse_moment(text)
    except BadMoment as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None


def _window_start(conn: Any, start: str | None) -> int:
    if start is None:
        return 1
    moment = _moment("--from", start)
    if isinstance(moment, int):
        return moment
    first = first_position_from(conn, moment)
    return first if first is not None else LAST_POSITION


def _write(fmt: str, columns: list[Column], rows: Iterator[Any] | list[Any]) -> None:
    out = sys.stdout
    if fmt == "json":
        output.write_json(out, rows)
    elif fmt == "jsonl":
        output.write_jsonl(out, rows)
    elif fmt == "markdown":
        output.write_markdown(out, columns, rows)
    else:
        output.write_table(out, columns, rows)


def _echo_json(value: Any) -> None:
    click.echo(msgspec.json.encode(value).decode())

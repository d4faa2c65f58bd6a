"""`psa-ledger callbacks`: the outbox from a shell, also while the service runs.

Listing reads the log read-only. A retry writes through the same `Ledger` as the server:
on SQLite `BEGIN IMMEDIATE` serialises it with a running server, whose writer notices the
foreign append by its primary key; on PostgreSQL it takes the append lock as a replica
does. Couriers see the row fall due at their next poll (on PostgreSQL, at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass

import click
import msgspec

from service.callbacks.retry import AlreadyDelivered, NoCallback, listed, retry_callback, retry_dead
from service.ledger.outbox import Callback, Status
from service.ledger.writer import Ledger
from service.shell.options import db_option
from service.storage.backend import backend_for
from service.storage.readpool import ReadPool

__all__ = ["callbacks"]


@click.group()
def callbacks() -> None:
    """Callbacks owed to N-central: list them, retry them by hand."""


@callbacks.command("list")
@db_option
@click.option(
    "--status", type=click.Choice([Status.PENDING.value, Status.DEAD.value]), default=None
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def list_callbacks(db: str, status: str | None, fmt: str) -> None:
    """Pending and dead-lettered callbacks, with their last error and next attempt."""
    backend = backend_for(db)
    try:
        with contextlib.closing(backend.connect_sync()) as connection:
            found = listed(connection, Status(status) if status else None)
    except backend.refusals as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "json":
        click.echo(msgspec.json.encode({"callbacks": found}))
    else:
        click.echo(_table(found))


@callbacks.command()
@db_option
@click.argument("tickets", nargs=-1)
@click.option("--all-dead", is_flag=True, help="retry every dead-lettered callback")
def retry(db: str, tickets: tuple[str, ...], all_dead: bool) -> None:
    """Try callbacks again now, on a fresh schedule: TICKET... (ncentralTicketId) or --all-dead."""
    if bool(tickets) == all_dead:
        raise click.UsageError("name the tickets to retry, or pass --all-dead (not both)")
    backend = backend_for(db)
    try:
        backend.connect_sync().close()
    except backend.refusals as exc:
        raise click.ClickException(str(exc)) from None
    failed = asyncio.run(_retry(db, tickets, all_dead=all_dead, actor=_actor()))
    if failed:
        raise SystemExit(1)


async def _retry(db: str, tickets: tuple[str, ...], *, all_dead: bool, actor: str) -> int:
    """Retries through a ledger of our own; returns how many could not be retried."""
    ledger = Ledger(db)
    await ledger.open()
    reads = ReadPool(db)
    failed = 0
    try:
        if all_dead:
            retried = await retry_dead(ledger, reads, actor)
            click.echo(f"retry requested for {len(retried)} dead-lettered callback(s)")
        for ticket in tickets:
            try:
                callback = await retry_callback(ledger, reads, ticket, actor)
            except (NoCallback, AlreadyDelivered) as exc:
                click.echo(f"psa-ledger: {exc}", err=True)
                failed += 1
                continue
            click.echo(f"retry requested for {ticket}: due {callback.next_attempt_at}")
    finally:
        reads.close()
        await ledger.close()
    return failed


def _actor() -> str:
    """The log names who asked; a shell user is the best we know."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


_HEADERS = ("TICKET", "NUMBER", "STATUS", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR")


def _table(found: list[Callback]) -> str:
    if not found:
        return "no callbacks pending or dead-lettered"
    rows = [
        (
            c.ncentral_ticket_id,
            c.external_ticket_id,
            c.status,
            str(c.attempts),
            c.next_attempt_at or "-",
            c.last_error or "-",
        )
        for c in found
    ]
    widths = [max(len(r[i]) for r in [_HEADERS, *rows]) for i in range(len(_HEADERS) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(r, widths, strict=False)), r[-1]])
        for r in [_HEADERS, *rows]
    )

"""`psa-ledger migrate --to postgresql://…`: a SQLite log moved into PostgreSQL, then proven.

The copy keeps every position and hash (the chain is the log's identity), the target's
projections are rebuilt by replay, and `verify` runs on the target before we say it is
done. A target psa-ledger has ever used is refused, so nothing can be merged into another
log by mistake.
"""

from __future__ import annotations

import contextlib

import click

from service.audit.verify import verify
from service.shell.options import db_option
from service.storage.backend import backend_for, is_url
from service.storage.postgres.connections import display
from service.storage.postgres.copy import NotEmpty, copy_log

__all__ = ["migrate"]


@click.command()
@db_option
@click.option(
    "--to", "target", required=True, metavar="URL", help="postgresql:// URL of an empty database"
)
def migrate(db: str, target: str) -> None:
    """Copy a SQLite log into an empty PostgreSQL database, then verify the copy there."""
    if is_url(db):
        raise click.BadParameter(
            "must be a SQLite file: migrate copies out of SQLite", param_hint="--db"
        )
    if not is_url(target):
        raise click.BadParameter("must be a postgresql:// URL", param_hint="--to")
    source_backend, target_backend = backend_for(db), backend_for(target)
    where = display(target)
    try:
        source = source_backend.connect_sync(readonly=True)
    except source_backend.refusals as exc:
        raise click.ClickException(f"cannot read {db}: {exc}") from None
    try:
        with contextlib.closing(source), source_backend.snapshot(source):
            count = copy_log(source, target, progress=_progress)
    except NotEmpty as exc:
        raise click.ClickException(f"{where}: {exc}") from None
    except target_backend.errors as exc:
        reason = str(exc).strip().splitlines()[0]
        raise click.ClickException(f"migrate to {where} failed, nothing copied: {reason}") from None
    click.echo(f"migrate: copied {count} events from {db} to {where}; verifying the copy")
    copied = target_backend.connect_sync()
    with contextlib.closing(copied), target_backend.snapshot(copied):
        report = verify(copied)
    if not report.ok:
        first = report.findings[0]
        raise click.ClickException(
            f"verify on {where} FAILED at position {first.position}: {first.problem}"
        )
    click.echo(f"verify: OK: {report.events} events, {report.tickets} tickets; chain intact")


def _progress(count: int) -> None:
    click.echo(f"migrate: {count} events copied", err=True)

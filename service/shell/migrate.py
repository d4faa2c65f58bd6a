"""`psa-ledger migrate --to …`: a log moved between SQLite and PostgreSQL, then proven.

Either way (a file into a `postgresql://` database, or a database into a file), the copy
keeps every position and hash (the chain is the log's identity), the target's projections
are rebuilt by replay, and `verify` runs on the target before we say it is done. A target
that holds anything is refused, so nothing can be merged into another log by mistake.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from service.audit.verify import verify
from service.settings import ENV_PREFIX, Settings
from service.shell.options import db_option
from service.storage import copy as into_sqlite
from service.storage.backend import backend_for, is_url
from service.storage.copy import NotEmpty
from service.storage.postgres import copy as into_postgres

__all__ = ["migrate"]


@click.command()
@db_option
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL|FILE",
    help="an empty postgresql:// database (from a SQLite --db), or a new SQLite file"
    " (from a postgresql:// --db)",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    envvar=f"{ENV_PREFIX}CHECKPOINT_EVERY",
    default=Settings().checkpoint_every,
    show_default=True,
    help="make the copy's checkpoints every this many events, as the service would"
    f" [{ENV_PREFIX}CHECKPOINT_EVERY]",
)
def migrate(db: str, target: str, checkpoint_every: int) -> None:
    """Copy the log into an empty database of the other kind, then verify the copy there."""
    if is_url(db) == is_url(target):
        raise click.BadParameter(
            "one side must be a postgresql:// URL and the other a SQLite file:"
            " migrate copies SQLite into PostgreSQL, or back",
            param_hint="--to",
        )
    source_backend, target_backend = backend_for(db), backend_for(target)
    where = target_backend.display
    try:
        source = source_backend.connect_sync(readonly=True)
    except source_backend.refusals as exc:
        raise click.ClickException(f"cannot read {source_backend.display}: {exc}") from None
    try:
        with contextlib.closing(source), source_backend.snapshot(source):
            count = _copy(source, target, checkpoint_every)
    except NotEmpty as exc:
        raise click.ClickException(f"{where}: {exc}") from None
    except (*source_backend.errors, *target_backend.errors) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise click.ClickException(f"migrate to {where} failed, nothing copied: {reason}") from None
    click.echo(
        f"migrate: copied {count} events from {source_backend.display} to {where};"
        " verifying the copy"
    )
    copied = target_backend.connect_sync()
    with contextlib.closing(copied), target_backend.snapshot(copied):
        report = verify(copied)
    if not report.ok:
        first = report.findings[0]
        raise click.ClickException(
            f"verify on {where} FAILED at position {first.position}: {first.problem}"
        )
    click.echo(f"verify: OK: {report.events} events, {report.tickets} tickets; chain intact")


def _copy(source: object, target: str, checkpoint_every: int) -> int:
    if is_url(target):
        return into_postgres.copy_log(
            source, target, progress=_progress, checkpoint_every=checkpoint_every
        )
    return into_sqlite.copy_log(
        source, Path(target), progress=_progress, checkpoint_every=checkpoint_every
    )


def _progress(count: int) -> None:
    click.echo(f"migrate: {count} events copied", err=True)

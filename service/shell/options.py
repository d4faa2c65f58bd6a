"""What every shell tool that opens the log shares: the `--db` option."""

from __future__ import annotations

from pathlib import Path

import click

from service.settings import ENV_PREFIX, Settings

__all__ = ["db_option"]

#: `--db`, else PSA_LEDGER_DB, else the default every command and `serve` agree on. Read
#: directly rather than through `load_settings`, so that reading the log never fails on a
#: setting only `serve` needs.
db_option = click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar=f"{ENV_PREFIX}DB",
    default=Settings().db,
    show_default=True,
    help=f"the event log [{ENV_PREFIX}DB]",
)

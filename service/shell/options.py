"""What every shell tool shares: the `--db` option, and logging set up as `serve` does."""

from __future__ import annotations

from typing import Any

import click

from service.logs import FORMATS, LEVELS, configure_logging
from service.settings import ENV_PREFIX, Settings, describe

__all__ = ["add_log_options", "db_option"]

#: `--db`, else PSA_LEDGER_DB, else the default every command and `serve` agree on. Read
#: directly rather than through `load_settings`, so that reading the log never fails on a
#: setting only `serve` needs.
db_option = click.option(
    "--db",
    type=str,
    envvar=f"{ENV_PREFIX}DB",
    default=Settings().db,
    show_default=True,
    help=f"the event log: a SQLite file or a postgresql:// URL [{ENV_PREFIX}DB]",
)


def add_log_options(command: click.Command) -> None:
    """`--log-level` and `--log-format` (and their PSA_LEDGER_ variables), as `serve` has.

    Read by the options themselves, not passed to the command, so no tool's signature
    changes; logging is set up before the tool runs.
    """
    defaults = Settings()
    for name, choices in (("log_level", LEVELS), ("log_format", FORMATS)):
        command.params.append(
            click.Option(
                ["--" + name.replace("_", "-"), name],
                type=click.Choice(choices),
                envvar=ENV_PREFIX + name.upper(),
                default=getattr(defaults, name),
                expose_value=False,
                is_eager=True,
                callback=_configure,
                help=describe(name),
            )
        )


def _configure(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Each of the two options sets up logging with what is known so far; the last wins."""
    assert param.name is not None
    ctx.meta[param.name] = value
    configure_logging(ctx.meta.get("log_level", "info"), ctx.meta.get("log_format", "text"))

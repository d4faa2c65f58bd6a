"""`psa-ledger`: serve the endpoint, and the shell tools that read the log."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from service import tuning
from service.logs import configure_logging
from service.settings import (
    ENV_PREFIX,
    SECRETS,
    Settings,
    SettingsError,
    describe,
    field_names,
    load_settings,
)
from service.shell.callbacks import callbacks
from service.shell.migrate import migrate
from service.shell.options import add_log_options
from service.storage.backend import backend_for

__all__ = ["main"]

#: A shell tool's exit status when its reader closed the pipe: 128 + SIGPIPE, as a shell
#: reports for `cat` or `git log` stopped by `head`.
_PIPE_CLOSED = 141

log = logging.getLogger("psa_ledger.cli")


class _Commands(click.Group):
    """Logs each shell tool's run (command, exit status, duration), as serve logs requests."""

    def invoke(self, ctx: click.Context) -> Any:
        started, status, error = time.perf_counter(), 0, None
        try:
            done = super().invoke(ctx)
            sys.stdout.flush()  # a reader gone shows here, not at the interpreter's exit
            return done
        except BrokenPipeError:
            # `psa-ledger export | head`: the reader had what it wanted. No warning and no
            # traceback; the status a shell gives any writer whose pipe closed (`cat`'s).
            status = _PIPE_CLOSED
            _discard_stdout()
            raise SystemExit(_PIPE_CLOSED) from None
        except click.exceptions.Exit as exc:
            status = exc.exit_code
            raise
        except click.ClickException as exc:
            status, error = exc.exit_code, exc.format_message()
            raise
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
            raise
        except BaseException:
            status = 1
            raise
        finally:
            command = ctx.invoked_subcommand
            # Only once the tool's own logging options have set logging up (not on --help
            # or a usage error), and not for serve, which logs its requests instead.
            if command != "serve" and "log_format" in ctx.meta:
                fields = {
                    "command": command,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "error": error,
                }
                level = logging.INFO if status in (0, _PIPE_CLOSED) else logging.WARNING
                log.log(level, "%s exited %d", command, status, extra={"fields": fields})


def _discard_stdout() -> None:
    """Send what is still buffered for the closed pipe nowhere: the interpreter flushes
    standard output as it exits, and would fail on the pipe again."""
    nowhere = os.open(os.devnull, os.O_WRONLY)
    os.dup2(nowhere, sys.stdout.fileno())
    os.close(nowhere)


@click.group(cls=_Commands)
def main() -> None:
    """psa-ledger: an event-sourced Custom PSA endpoint for N-central."""


def _settings_options(command: Any) -> Any:
    """Every setting as a flag, so `--port 9000` beats PSA_LEDGER_PORT; secrets excepted."""
    for name in reversed(field_names()):
        flag = "--" + name.replace("_", "-")
        if name in SECRETS:
            command = click.option(
                flag, expose_value=False, hidden=True, callback=_refuse_secret_flag
            )(command)
        else:
            command = click.option(flag, name, default=None, help=describe(name))(command)
    return click.option(
        "--config",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="TOML file of settings (a [psa-ledger] table or top-level keys)",
    )(command)


def _refuse_secret_flag(context: click.Context, parameter: click.Parameter, value: Any) -> None:
    """A flag with a secret would show in `ps` to every user: say where it goes instead."""
    if value is None:
        return
    variable = ENV_PREFIX + str(parameter.name).upper()
    raise click.BadParameter(
        f"secrets are not taken from the command line, where `ps` shows them to every user;"
        f" set {variable}, or {variable}_FILE naming a file that holds it,"
        f" or put it in the --config file",
        param=parameter,
    )


class RefusedSettings(click.ClickException):
    """One line naming the setting, exit 2: no usage text, which would bury it."""

    exit_code = 2


def settings_from(config: Path | None, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(config=config, overrides=overrides)
    except SettingsError as exc:
        raise RefusedSettings(str(exc)) from None


@main.command()
@_settings_options
def serve(config: Path | None, **overrides: Any) -> None:
    """Serve N-central's endpoint and the operator API."""
    import uvicorn

    from service.http.app import create_app
    from service.http.connections import http_protocol

    settings = settings_from(config, overrides)
    configure_logging(settings.log_level, settings.log_format)
    _open_log(settings)
    try:
        app = create_app(settings)
    except SettingsError as exc:
        raise RefusedSettings(str(exc)) from None
    tuning.for_serving()
    # The log's display name: a URL's password stays out of the journal.
    where = backend_for(settings.db).display
    log.info(
        "serving %s (log %s, create mode %s)",
        settings.base_url,
        where,
        settings.create_mode,
        extra={"fields": {"url": settings.base_url, "db": where}},
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Ours: configured above, with an access log of our own (service.logs.AccessLog).
        log_config=None,
        access_log=False,
        # The throttle reads X-Forwarded-For itself, from trusted proxies only: uvicorn's
        # own reading would believe any process on 127.0.0.1.
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        http=http_protocol(settings.header_timeout),
        # uvicorn answers 503 once the open connections, the asking one included, reach
        # the limit: one more than the setting lets exactly max_connections be served.
        limit_concurrency=settings.max_connections + 1,
    )


def _open_log(settings: Settings) -> None:
    """Reach the log (and bring its schema up to date) before serving: one line if we cannot."""
    from service.storage.backend import backend_for

    backend = backend_for(settings.db, busy_timeout_ms=settings.busy_timeout_ms)
    try:
        backend.connect_sync(readonly=False).close()
    except backend.errors as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise click.ClickException(
            f"cannot open the event log at {backend.display}: {reason}"
        ) from None


@main.command()
@click.option("--format", "fmt", type=click.Choice(["markdown", "mermaid"]), default="markdown")
def states(fmt: str) -> None:
    """Print the ticket state table (or diagram) generated from the state machine."""
    from statemachine.describe import markdown_table, mermaid

    click.echo(markdown_table() if fmt == "markdown" else mermaid())


def _add_audit_commands() -> None:
    from service.shell.audit import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


def _add_log_options(group: click.Group) -> None:
    """Every shell tool logs as `serve` does; `serve` has the same two as settings."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _add_log_options(command)
        elif command is not serve:
            add_log_options(command)


_add_audit_commands()
main.add_command(callbacks)
main.add_command(migrate)
_add_log_options(main)

if __name__ == "__main__":
    sys.exit(main())

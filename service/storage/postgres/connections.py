"""Connections to a PostgreSQL log: the writer's, read-only ones, the shell's, pools.

The counterpart of `service.storage.sqlite`, with its names and promises: only the
writer's and the shell's writable connection run migrations; every other connection is
read-only (the server refuses its writes, as SQLite's `mode=ro` does), so a reader can
never change the log it audits; the writer's connection is never in autocommit, so a
write cannot land outside a transaction. Rows come back as dicts, read by column name
as `sqlite3.Row`s are. Async for the service (the writer, the courier, pools), sync for
the shell and the read side's worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row, scalar_row
from psycopg_pool import ConnectionPool

from service.storage.postgres.schema import migrate, migrate_async

__all__ = [
    "AsyncConnection",
    "Connection",
    "connect",
    "connect_listener",
    "connect_readonly",
    "connect_sync",
    "display",
    "read_pool",
    "snapshot",
]

AsyncConnection = psycopg.AsyncConnection[DictRow]
Connection = psycopg.Connection[DictRow]

# Every statement planned for the values it is run with. psycopg prepares a statement on
# its fifth execution, and PostgreSQL may then settle on a generic plan, blind to the
# values: on a million events the review page went from 30 ms to 3 s after about twenty
# requests, its time-window reads walking whole indexes (docs/architecture.md). Not the
# writer's session: its INSERTs plan alike for any values, and planning each of them
# again would cost every batch.
_CUSTOM_PLANS = "-c plan_cache_mode=force_custom_plan"
# No JIT compilation, in any session. The planner's estimates for reads of position ranges
# whose bounds are parameters run past jit_above_cost, and PostgreSQL then compiled the
# review page's counts with inlining and optimisation: 220 ms of compiling for 10 ms of
# work on a million events. psa-ledger's statements are short; none gains from JIT.
_NO_JIT = "-c jit=off"
# Every session but the writer's.
_PLANNED = f"{_CUSTOM_PLANS} {_NO_JIT}"
# The server refuses every write in these sessions' transactions.
_READ_ONLY = f"-c default_transaction_read_only=on {_PLANNED}"
# Seconds to wait for a server that does not answer (libpq waits forever by default).
CONNECT_TIMEOUT = 10
_NO_LOG = "SELECT to_regclass('events') IS NULL"


async def connect(url: str, *, writer: bool = False) -> AsyncConnection:
    """An async connection with the schema in place.

    The writer's connection opens a transaction by itself before its first statement, so
    that a write can never land outside one; other connections are autocommit.
    """
    db = await psycopg.AsyncConnection.connect(
        url,
        autocommit=True,
        row_factory=dict_row,
        connect_timeout=CONNECT_TIMEOUT,
        options=_NO_JIT if writer else _PLANNED,
    )
    try:
        await migrate_async(db)
        await db.set_autocommit(not writer)
    except BaseException:
        await db.close()
        raise
    return db


async def connect_readonly(url: str) -> AsyncConnection:
    """An async read-only connection to a log that the writer has already created."""
    return await psycopg.AsyncConnection.connect(
        url,
        autocommit=True,
        row_factory=dict_row,
        connect_timeout=CONNECT_TIMEOUT,
        options=_READ_ONLY,
    )


async def connect_listener(url: str) -> AsyncConnection:
    """An autocommit connection for LISTEN, which a read-only session may not run."""
    return await psycopg.AsyncConnection.connect(
        url,
        autocommit=True,
        row_factory=dict_row,
        connect_timeout=CONNECT_TIMEOUT,
        options=_PLANNED,
    )


def connect_sync(url: str, *, readonly: bool = True) -> Connection:
    """A plain connection for the command-line tools; read-only unless asked otherwise.

    Read-only on a database without a log is `FileNotFoundError`, as for a missing SQLite
    file, so the shell tells both the same way.
    """
    db = psycopg.connect(
        url,
        autocommit=True,
        row_factory=dict_row,
        connect_timeout=CONNECT_TIMEOUT,
        options=_READ_ONLY if readonly else _PLANNED,
    )
    try:
        if not readonly:
            migrate(db)
        elif db.cursor(row_factory=scalar_row).execute(_NO_LOG).fetchone():
            raise FileNotFoundError(f"no event log at {display(url)}")
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def snapshot(db: Connection, *, of: str | None = None) -> Iterator[Connection]:
    """Every read inside sees the log as of one commit (a repeatable-read transaction);
    with `of`, the snapshot another session exported (`pg_export_snapshot`)."""
    with db.transaction():
        db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if of is not None:
            db.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(of))
        yield db


def read_pool(url: str, *, max_size: int = 8) -> ConnectionPool[Connection]:
    """Read-only connections for the read side's worker threads, checked on checkout.

    Opened in the background: the first query waits for a connection at most
    `CONNECT_TIMEOUT` seconds, so a lost server makes a read fail, not hang.
    """
    return ConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT,
        check=ConnectionPool.check_connection,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": CONNECT_TIMEOUT,
            "options": _READ_ONLY,
        },
        open=True,
    )


def display(url: str) -> str:
    """`url` fit for a message or a log line: user, host, port and database, no password."""
    parts = conninfo_to_dict(url)
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"

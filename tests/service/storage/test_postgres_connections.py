"""Connections to a PostgreSQL log keep the promises of the SQLite ones, on a real server.

The writer never writes outside a transaction; readers cannot write; a snapshot sees one
commit; the shell is told plainly when there is no log; rows read by column name become
the same domain values; the read pool survives the server dropping its connections; and a server
that cannot be reached is a quick, one-line error, never a hang or a password in a log.
"""

from __future__ import annotations

import time

import msgspec
import psycopg
import pytest

from service.storage.backend import backend_for
from service.storage.postgres import connections
from service.storage.rows import TICKET_COLUMNS, stream_from_row, ticket_from_row, ticket_row
from statemachine.projection import Content, Standing, Stream
from statemachine.ticket import State
from tests.support.live import free_port, wait_for

INSERT_CALLBACK = (
    "INSERT INTO callbacks (ncentral_ticket_id, external_ticket_id, ticket_url, status,"
    " create_position, created_at, updated_at) VALUES (%s, 'PSA-1', 'u', 'pending', 1, 't', 't')"
)


def count_callbacks(url: str) -> int:
    with psycopg.connect(url) as other:
        row = other.execute("SELECT count(*) FROM callbacks").fetchone()
    assert row is not None
    return int(row[0])


async def test_the_writer_never_writes_outside_a_transaction(postgres_url: str) -> None:
    writer = await connections.connect(postgres_url, writer=True)
    try:
        await writer.execute(INSERT_CALLBACK, ("1",))
        assert count_callbacks(postgres_url) == 0, "visible before COMMIT"
        await writer.commit()
        assert count_callbacks(postgres_url) == 1

        await writer.execute(INSERT_CALLBACK, ("2",))
        await writer.rollback()
        assert count_callbacks(postgres_url) == 1
    finally:
        await writer.close()


async def test_readers_cannot_write(postgres_url: str) -> None:
    await (await connections.connect(postgres_url)).close()
    reader = await connections.connect_readonly(postgres_url)
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await reader.execute(INSERT_CALLBACK, ("1",))
    finally:
        await reader.close()
    shell = connections.connect_sync(postgres_url)
    with shell, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        shell.execute(INSERT_CALLBACK, ("1",))
    assert count_callbacks(postgres_url) == 0


def test_the_shell_is_told_there_is_no_log_without_the_password(postgres_url: str) -> None:
    with_password = postgres_url.replace("postgres@", "postgres:hunter2@")
    with pytest.raises(FileNotFoundError, match="no event log at postgresql://") as error:
        connections.connect_sync(with_password)
    assert "hunter2" not in str(error.value)

    connections.connect_sync(postgres_url, readonly=False).close()
    connections.connect_sync(postgres_url).close()


def test_rows_read_by_column_name_become_the_same_streams(postgres_url: str) -> None:
    standing = Standing(
        ncentral_ticket_id="4242",
        external_ticket_id="PSA-7",
        state=State.OPEN,
        created_at="2026-01-02T03:04:05.000006Z",
        updated_at="2026-01-02T03:04:05.000006Z",
    )
    content = Content(
        title="Disk C: 95% full",
        details="Device: srv-01\nSite: Łódź",
        custom_tags={"site": "A", "team": "ops"},
    )
    stream = Stream(3, standing, content)
    with connections.connect_sync(postgres_url, readonly=False) as db:
        marks = ", ".join(["%s"] * len(TICKET_COLUMNS))
        db.execute(
            f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)}) VALUES ({marks})",
            # `ticket_row` encodes JSON as bytes, which SQLite keeps as a BLOB in a TEXT
            # column; PostgreSQL would take bytes as bytea, so its writer sends text.
            [v.decode() if isinstance(v, bytes) else v for v in ticket_row("4242", stream, 2**40)],
        )
    with connections.connect_sync(postgres_url) as db:
        row = db.execute("SELECT * FROM tickets").fetchone()
        assert row is not None
        assert stream_from_row(row) == stream.stored()
        assert ticket_from_row(row).details == content.details
        assert row["last_position"] == 2**40
        assert msgspec.json.decode(row["custom_tags"]) == {"site": "A", "team": "ops"}


def test_a_snapshot_sees_one_commit(postgres_url: str) -> None:
    connections.connect_sync(postgres_url, readonly=False).close()
    with connections.connect_sync(postgres_url) as reader:
        with connections.snapshot(reader):
            before = reader.execute("SELECT count(*) AS n FROM callbacks").fetchone()
            with psycopg.connect(postgres_url, autocommit=True) as writer:
                writer.execute(INSERT_CALLBACK, ("1",))
            during = reader.execute("SELECT count(*) AS n FROM callbacks").fetchone()
        after = reader.execute("SELECT count(*) AS n FROM callbacks").fetchone()
    assert (before, during, after) == ({"n": 0}, {"n": 0}, {"n": 1})


def test_the_read_pool_replaces_connections_the_server_dropped(postgres_url: str) -> None:
    connections.connect_sync(postgres_url, readonly=False).close()  # the schema
    pool = connections.read_pool(postgres_url, max_size=2)
    try:
        with pool.connection() as db:
            pids = {_pid(db)}
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            others = "datname = current_database() AND pid <> pg_backend_pid()"
            dropped = admin.execute(
                f"SELECT array_agg(pid) FROM pg_stat_activity WHERE {others}"
            ).fetchone()
            admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {others}")
            # Termination is a signal: wait until those backends are really gone.
            wait_for(
                lambda: (
                    admin.execute(
                        "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = ANY(%s))",
                        dropped,
                    ).fetchone()
                    == (True,)
                ),
                what="the terminated backends to exit",
            )
        for _ in range(4):
            with pool.connection() as db:
                assert db.execute("SELECT count(*) AS n FROM events").fetchone() == {"n": 0}
                pids.add(_pid(db))
        assert len(pids) > 1, "the dropped connection came back from the pool"
    finally:
        pool.close()


def _pid(db: connections.Connection) -> int:
    row = db.execute("SELECT pg_backend_pid() AS pid").fetchone()
    assert row is not None
    return int(row["pid"])


async def test_an_unreachable_server_is_a_quick_one_line_error() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError) as error:
        await connections.connect(url, writer=True)
    assert time.monotonic() - started < 5
    assert "refused" in str(error.value)
    with pytest.raises(psycopg.OperationalError):
        connections.connect_sync(url)


def test_display_hides_the_password() -> None:
    url = "postgresql://ledger:s3cret@db.example.test:5433/psa"
    assert connections.display(url) == "postgresql://ledger@db.example.test:5433/psa"


async def test_every_session_but_the_writers_plans_each_statement_for_its_values(
    postgres_url: str,
) -> None:
    """psycopg prepares a statement on its fifth run, and PostgreSQL may then keep a generic
    plan, blind to the values: on a million events the review page's window reads then
    walked whole indexes (30 ms became 3 s after some twenty requests). Every session of
    the read side, the shell and the couriers plans each run for its values; the writer's
    keeps PostgreSQL's default, since its INSERTs plan alike for any values."""
    backend = backend_for(postgres_url)
    writer = await backend.connect_writer()
    reader = await connections.connect_readonly(postgres_url)
    listener = await connections.connect_listener(postgres_url)
    courier = await connections.connect(postgres_url)
    shell, shell_writer = backend.connect_sync(), backend.connect_sync(readonly=False)
    modes: dict[str, str] = {}
    try:
        with backend.reading() as read_side:
            modes["read side"] = read_side.execute(SHOW_PLANS).fetchone()["m"]
        for name, db in (("reader", reader), ("listener", listener), ("courier", courier)):
            modes[name] = (await (await db.execute(SHOW_PLANS)).fetchone())["m"]
        for name, sync in (("shell", shell), ("shell writing", shell_writer)):
            modes[name] = sync.execute(SHOW_PLANS).fetchone()["m"]
        writers = (await (await writer.execute(SHOW_PLANS)).fetchone())["m"]
    finally:
        backend.close()
        shell.close()
        shell_writer.close()
        for db in (writer, reader, listener, courier):
            await db.close()
    assert set(modes.values()) == {"force_custom_plan off"}, modes
    assert writers == "auto off"


# And JIT off in every session: on a million events PostgreSQL spent 220 ms compiling the
# review page's counts, 10 ms of work, because their estimates passed jit_above_cost.
SHOW_PLANS = "SELECT current_setting('plan_cache_mode') || ' ' || current_setting('jit') AS m"

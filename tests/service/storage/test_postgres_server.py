"""The throwaway PostgreSQL server the backend's tests run on is what they assume it is."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.postgres import Postgres


def test_server_runs_as_postgres_on_loopback_only(postgres: Postgres) -> None:
    row = postgres.psql("SELECT current_setting('listen_addresses'), version()").strip()
    listen, version = row.split("|")
    assert listen == "127.0.0.1"
    assert version.startswith("PostgreSQL ")
    if os.geteuid() == 0:
        # PostgreSQL refuses root; the fixture must have dropped to the system user.
        data = postgres.psql("SELECT current_setting('data_directory')").strip()
        postmaster = Path(data, "postmaster.pid").read_text().split()[0]
        assert os.stat(f"/proc/{postmaster}").st_uid != 0


def test_each_database_is_fresh_and_empty(postgres: Postgres) -> None:
    first, second = postgres.create_database(), postgres.create_database()
    assert first != second
    name = first.rsplit("/", 1)[1]
    postgres.psql("CREATE TABLE scratch (n int)", database=name)
    other = second.rsplit("/", 1)[1]
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert postgres.psql(tables, database=other).strip() == "0"
    assert postgres.psql(tables, database=name).strip() == "1"

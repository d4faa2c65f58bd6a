"""One built log read on each backend: the SQLite file, or its copy in PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from service.storage import sqlite
from service.storage.backend import backend_for
from service.storage.postgres.copy import copy_log
from tests.support.postgres import Postgres


def read_on(request: pytest.FixtureRequest, log_file: Path) -> Iterator[Any]:
    """For a module fixture parametrised by `BACKENDS`: the log read on SQLite, then the
    same log copied into a PostgreSQL database (analysed, so its plans are realistic)."""
    if request.param == "sqlite":
        source = sqlite.connect_sync(log_file)
        yield source
        source.close()
        return
    url = copied_to_postgres(request.getfixturevalue("postgres"), log_file)
    conn = backend_for(url).connect_sync()
    yield conn
    conn.close()


def copied_to_postgres(
    postgres: Postgres, log_file: Path, *, checkpoint_every: int | None = None
) -> str:
    """A new database on `postgres` holding the SQLite log at `log_file`, as `migrate`
    copies it (analysed after, so its plans are realistic), with a checkpoint every
    `checkpoint_every` events (the setting's default if not given); its URL."""
    url = postgres.create_database()
    if checkpoint_every is None:
        checkpoint_every = Settings().checkpoint_every
    with closing(sqlite.connect_sync(log_file)) as source:
        copy_log(source, url, checkpoint_every=checkpoint_every)
    return url


def copy_to_damage(request: pytest.FixtureRequest, log_file: Path, folder: Path) -> str:
    """For a fixture parametrised by `BACKENDS`: a copy of the SQLite log at `log_file` on
    that backend, its events' refusal of UPDATE dropped so that a test can damage it; its
    file or URL."""
    if request.param == "sqlite":
        copy = folder / "copy.db"
        with sqlite3.connect(log_file) as src, closing(sqlite3.connect(copy)) as dst:
            src.backup(dst)
        edit(str(copy), "DROP TRIGGER events_refuse_update")
        return str(copy)
    url = copied_to_postgres(request.getfixturevalue("postgres"), log_file)
    edit(url, "DROP TRIGGER events_refuse_update ON events")
    return url


def edit(db: str, *statements: str) -> None:
    """Run `statements` on the log `db` (a file or a URL) in one transaction."""
    with closing(backend_for(db).connect_sync(readonly=False)) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()

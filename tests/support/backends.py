"""One built log read on each backend: the SQLite file, or its copy in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from service.storage import sqlite
from service.storage.backend import backend_for
from service.storage.postgres.copy import copy_log


def read_on(request: pytest.FixtureRequest, log_file: Path) -> Iterator[Any]:
    """For a module fixture parametrised by `BACKENDS`: the log read on SQLite, then the
    same log copied into a PostgreSQL database (analysed, so its plans are realistic)."""
    source = sqlite.connect_sync(log_file)
    if request.param == "sqlite":
        yield source
        source.close()
        return
    postgres = request.getfixturevalue("postgres")
    url = postgres.create_database()
    copy_log(source, url, checkpoint_every=Settings().checkpoint_every)
    source.close()
    postgres.psql("ANALYZE", database=url.rsplit("/", 1)[-1])
    conn = backend_for(url).connect_sync()
    yield conn
    conn.close()

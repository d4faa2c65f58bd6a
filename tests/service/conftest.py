from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKENDS
from tests.support.harness import Server
from tests.support.ncentral_fake import FakeNcentral


@pytest.fixture(scope="module", params=BACKENDS)
def module_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path | str:
    """`log_db` for a whole test module: a file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return Path(tmp_path_factory.mktemp("log")) / "log.db"
    url: str = request.getfixturevalue("postgres").create_database()
    return url


@pytest.fixture(scope="module")
def server(module_db: Path | str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server per test module and backend: on its own file, then its own database."""
    running = Server(module_db, log_dir=Path(tmp_path_factory.mktemp("server")))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeNcentral]:
    """A fake N-central on a free port, recording every callback, for one test module."""
    with FakeNcentral().running() as fake:
        yield fake

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKENDS
from tests.support.harness import Server
from tests.support.ncentral_fake import FakeNcentral


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One real server per test module and backend: on its own file, then its own database."""
    folder = Path(tmp_path_factory.mktemp("server"))
    db: Path | str = folder / "log.db"
    if request.param == "postgresql":
        db = request.getfixturevalue("postgres").create_database()
    running = Server(db, log_dir=folder)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeNcentral]:
    """A fake N-central on a free port, recording every callback, for one test module."""
    with FakeNcentral().running() as fake:
        yield fake

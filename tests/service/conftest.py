from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import Server
from tests.support.ncentral_fake import FakeNcentral


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server per test module, on its own DB file."""
    running = Server(Path(tmp_path_factory.mktemp("server")) / "log.db")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeNcentral]:
    """A fake N-central on a free port, recording every callback, for one test module."""
    with FakeNcentral().running() as fake:
        yield fake

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.harness import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server per test module, on its own DB file."""
    running = Server(Path(tmp_path_factory.mktemp("server")) / "log.db")
    try:
        yield running
    finally:
        running.stop()

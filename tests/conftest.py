"""Shared fixtures: an in-process app on a real SQLite file, real server processes, a
throwaway PostgreSQL server, and `log_db`, which runs a test once on each backend."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from service.http.app import create_app
from service.http.auth import Credential, Credentials
from service.settings import Settings
from tests.support.fuzzing import load_profile
from tests.support.live import Service
from tests.support.postgres import Postgres, throwaway_postgres

NCENTRAL = Credential("ncentral", "nc-secret")
OPERATOR = Credential("operator", "op-secret")
CREDENTIALS = Credentials(ncentral=NCENTRAL, operator=OPERATOR)

load_profile()


def basic(credential: Credential) -> dict[str, str]:
    token = base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(db=tmp_path / "ledger.db", public_url="https://psa.example.test")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    app = create_app(settings, CREDENTIALS)
    async with AsyncTestClient(app) as test_client:
        yield test_client


@pytest.fixture
def server_factory() -> Iterator[Callable[[Path], Service]]:
    """Makes `Service`s (real `psa-ledger serve` processes); stops them all afterwards."""
    made: list[Service] = []

    def make(db: Path | str, log_dir: Path | None = None, **settings: str) -> Service:
        made.append(Service(db, log_dir=log_dir, **settings))
        return made[-1]

    yield make
    for service in made:
        service.stop()


#: The backends `log_db` runs a test on.
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def log_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where the test's event log lives (`PSA_LEDGER_DB`): a file, then a fresh database.

    A test that takes this fixture runs once on SQLite and once on PostgreSQL; without a
    PostgreSQL server the second run fails, it is never skipped.
    """
    if request.param == "sqlite":
        return tmp_path / "ledger.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One throwaway PostgreSQL server for the whole run; it fails (never skips) without one."""
    with throwaway_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: Postgres) -> str:
    """The URL of a fresh, empty database on the run's PostgreSQL server."""
    return postgres.create_database()

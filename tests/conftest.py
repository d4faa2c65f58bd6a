"""Shared fixtures: an in-process app on a real SQLite file, and real server processes."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.auth import Credential, Credentials
from service.settings import Settings

NCENTRAL = Credential("ncentral", "nc-secret")
OPERATOR = Credential("operator", "op-secret")
CREDENTIALS = Credentials(ncentral=NCENTRAL, operator=OPERATOR)


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A real `psa-ledger serve` process on a free port."""

    def __init__(self, db: Path, *, env: dict[str, str] | None = None) -> None:
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PSA_LEDGER_DB": str(db),
            "PSA_LEDGER_PORT": str(self.port),
            "PSA_LEDGER_PASSWORD": NCENTRAL.password,
            "PSA_LEDGER_OPERATOR_PASSWORD": OPERATOR.password,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Server:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise TimeoutError("server did not become healthy")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[Server]]:
    started: list[Server] = []

    class Tracked(Server):
        def start(self, timeout: float = 20.0) -> Server:
            started.append(self)
            return super().start(timeout)

    yield Tracked
    for server in started:
        server.stop()

"""The servers a benchmark loads: a real `psa-ledger serve`, or the bare baseline app.

Both are separate processes on free ports, started the way a user would start them and
stopped by their own process, so the load generator measures a server, not this one.
`psa-ledger serve` keeps its log where `fresh_logs` says: a new SQLite file, or a new
database on a throwaway PostgreSQL server.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx

from bench import wrk
from tests.support.postgres import throwaway_postgres

__all__ = [
    "AUTH",
    "BACKENDS",
    "PASSWORD",
    "USERNAME",
    "baseline",
    "free_port",
    "fresh_logs",
    "on_each_backend",
    "psa_ledger",
    "start",
    "stopping",
]

USERNAME = "ncentral"
PASSWORD = "bench-inbound-password"
AUTH = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
#: What `--backend` may name: one backend, or both in turn.
BACKENDS = {"sqlite": ["sqlite"], "postgresql": ["postgresql"], "both": ["sqlite", "postgresql"]}

T = TypeVar("T")


def on_each_backend(
    suite: str, backend: str, measure: Callable[..., T], *, logs: int = 1
) -> dict[str, T] | None:
    """`measure` of `logs` fresh logs on each backend `backend` names (`--backend`), by
    backend; None, said why, when wrk cannot be had to load the server."""
    try:
        wrk.ensure_wrk()
    except wrk.WrkMissing as exc:
        print(f"{suite}: cannot run: {exc}")
        return None
    found = {}
    for name in BACKENDS[backend]:
        with fresh_logs(name, logs) as dbs:
            print(f"{suite} on {name}:")
            found[name] = measure(*dbs)
    return found


@contextmanager
def fresh_logs(backend: str, count: int) -> Iterator[list[Path | str]]:
    """`count` new logs: files in one new folder, or databases on one throwaway server."""
    if backend == "postgresql":
        with throwaway_postgres() as server:
            yield [server.create_database() for _ in range(count)]
        return
    with tempfile.TemporaryDirectory(prefix="psa-ledger-bench-") as folder:
        yield [Path(folder) / f"ledger-{n}.db" for n in range(1, count + 1)]


def start(
    command: list[str], port: int, *, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `command` and return once something answers HTTP on `port`."""
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{' '.join(command)} exited {server.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.kill()
    raise TimeoutError(f"{' '.join(command)} did not answer on port {port}")


def psa_ledger_process(db: Path | str, port: int, **settings: str) -> subprocess.Popen[bytes]:
    """`psa-ledger serve` on `db` (a file or a URL), N-central's credential being
    USERNAME:PASSWORD."""
    env = {
        **os.environ,
        "PSA_LEDGER_DB": str(db),
        "PSA_LEDGER_PORT": str(port),
        "PSA_LEDGER_USERNAME": USERNAME,
        "PSA_LEDGER_PASSWORD": PASSWORD,
        "PSA_LEDGER_OPERATOR_PASSWORD": "bench-operator-password",
        "PSA_LEDGER_LOG_LEVEL": "warning",
        **{f"PSA_LEDGER_{key.upper()}": value for key, value in settings.items()},
    }
    return start([sys.executable, "-m", "service", "serve"], port, env=env)


@contextmanager
def psa_ledger(db: Path | str, **settings: str) -> Iterator[int]:
    """A running `psa-ledger serve`; yields its port."""
    port = free_port()
    with stopping(psa_ledger_process(db, port, **settings)):
        yield port


@contextmanager
def baseline() -> Iterator[int]:
    """A running `python -m bench.baseline`; yields its port."""
    port = free_port()
    command = [sys.executable, "-m", "bench.baseline", "--port", str(port)]
    with stopping(start(command, port)):
        yield port


@contextmanager
def stopping(server: subprocess.Popen[bytes]) -> Iterator[None]:
    try:
        yield
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

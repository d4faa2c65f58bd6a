"""Connections to a real `psa-ledger serve`: slow or huge headers, and more clients than allowed.

Each test talks raw HTTP over a socket, as an attacker would, while an ordinary client
checks that the server keeps answering everybody else.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from service.http.connections import MAX_HEADER_BYTES
from service.settings import Settings, SettingsError, load_settings
from tests.support.live import Service, wait_for


def test_the_limits_are_settings_with_sane_defaults() -> None:
    assert (Settings().max_connections, Settings().header_timeout) == (100, 10.0)
    env = {"PSA_LEDGER_MAX_CONNECTIONS": "8", "PSA_LEDGER_HEADER_TIMEOUT": "2.5"}
    settings = load_settings(environ=env, overrides={"max_connections": "16"})
    assert (settings.max_connections, settings.header_timeout) == (16, 2.5)
    for name, value in [
        ("max_connections", "0"),
        ("header_timeout", "0"),
        ("header_timeout", "inf"),
    ]:
        with pytest.raises(SettingsError, match=f"PSA_LEDGER_{name.upper()}"):
            load_settings(environ={f"PSA_LEDGER_{name.upper()}": value})


@pytest.mark.slow
def test_headers_sent_too_slowly_get_408_and_the_connection_closes(
    tmp_path: Path, server_factory: Callable[..., Service]
) -> None:
    service = server_factory(tmp_path / "log.db", header_timeout="1").start()
    # Timed from before the connection opens: the server's deadline starts at its opening.
    started = time.monotonic()
    with raw_connection(service) as slow, raw_connection(service) as silent:
        slow.sendall(b"GET /healthz HTTP/1.1\r\n")
        for byte in b"Host: psa.example\r\nX-Slow: a byte at a time":
            if time.monotonic() - started > 0.8:
                break  # and never the rest
            slow.sendall(bytes([byte]))
            assert healthz(service) == 200  # everybody else is still served meanwhile
            time.sleep(0.05)
        answer = read_until_closed(slow)
        elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"application/problem+json" in answer
        # Not sooner than the setting, give or take the event loop's clock: uvloop reads the
        # time once a turn, in milliseconds, so its deadline may land a hair before ours.
        assert 0.95 <= elapsed < 5, elapsed
        # A connection that never sends a byte is let go the same way.
        assert read_until_closed(silent).startswith(b"HTTP/1.1 408 ")
    assert healthz(service) == 200


@pytest.mark.slow
def test_headers_larger_than_the_limit_get_431_and_the_connection_closes(
    tmp_path: Path, server_factory: Callable[..., Service]
) -> None:
    service = server_factory(tmp_path / "log.db").start()
    with raw_connection(service) as huge:
        huge.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: psa.example\r\nX-Pad: " + b"a" * (MAX_HEADER_BYTES + 1)
        )
        answer = read_until_closed(huge)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert healthz(service) == 200


@pytest.mark.slow
def test_more_connections_than_allowed_get_503_until_one_closes(
    tmp_path: Path, server_factory: Callable[..., Service]
) -> None:
    service = server_factory(tmp_path / "log.db", max_connections="3").start()
    with ExitStack() as held:
        idle = [held.enter_context(raw_connection(service)) for _ in range(3)]
        for sock in idle:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # and never the rest
        wait_for(lambda: healthz(service) == 503, what="a 503 over the cap")
        idle[0].close()
        # Two held and the asking one: exactly max_connections, so it is served.
        wait_for(lambda: healthz(service) == 200, what="a 200 once a connection closed")
    assert healthz(service) == 200
    assert service.running


@pytest.mark.slow
def test_busy_keep_alive_clients_up_to_the_cap_are_never_refused(
    tmp_path: Path, server_factory: Callable[..., Service]
) -> None:
    """As many keep-alive clients as the cap allows, each sending back to back: all served.

    uvicorn counts request tasks as well as connections, and a client's answered task may
    still be counted when its next request arrives; that must not cost anyone a 503.
    """
    clients = 8
    service = server_factory(tmp_path / "log.db", max_connections=str(clients)).start()

    def hammer(_: int) -> list[int]:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            return [client.get("/healthz").status_code for _ in range(150)]

    with ThreadPoolExecutor(clients) as pool:
        statuses = [status for run in pool.map(hammer, range(clients)) for status in run]
    assert statuses.count(503) == 0
    assert set(statuses) == {200}


@contextmanager
def raw_connection(service: Service) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
    try:
        yield sock
    finally:
        sock.close()


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (raises on a timeout)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def healthz(service: Service) -> int:
    return httpx.get(f"{service.url}/healthz", timeout=5).status_code

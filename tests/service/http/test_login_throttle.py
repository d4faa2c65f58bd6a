"""Guessing passwords, as an attacker would: against a real server, then the counter's limits."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from service.clientaddress import ClientAddress, parse_networks
from service.http.throttle import LoginThrottle
from tests.support.live import NCENTRAL, OPERATOR, Service

CREATE = {"action": "CREATE", "ncentralTicketId": "71", "title": "t", "details": "d"}
GUESS = "Winter2026!guess"


def test_the_eleventh_try_in_a_minute_is_429_for_that_address_only(
    server_factory: Callable[..., Service], log_db: Path | str, tmp_path: Path
) -> None:
    service = server_factory(log_db, log_dir=tmp_path, trusted_proxies="127.0.0.1").start()
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    for attempt in range(10):  # both credentials' routes count against the same address
        if attempt % 2:
            wrong = httpx.get(
                f"{service.url}/api/tickets", auth=("operator", GUESS), headers=attacker
            )
        else:
            wrong = httpx.put(
                f"{service.url}/ncentral/tickets",
                json=CREATE,
                auth=("mallory", GUESS),
                headers=attacker,
            )
        assert wrong.status_code == 401, attempt

    # Now even the right password is refused from there: a guesser learns nothing more.
    refused = httpx.put(
        f"{service.url}/ncentral/tickets", json=CREATE, auth=NCENTRAL, headers=attacker
    )
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["status"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    operator = httpx.get(f"{service.url}/api/tickets", auth=OPERATOR, headers=attacker)
    assert operator.status_code == 429

    # Another client behind the same proxy, and the proxy itself, are served as before.
    colleague = {"X-Forwarded-For": "203.0.113.8"}
    created = httpx.put(
        f"{service.url}/ncentral/tickets", json=CREATE, auth=NCENTRAL, headers=colleague
    )
    assert created.status_code == 200
    assert httpx.get(f"{service.url}/api/tickets", auth=OPERATOR).status_code == 200

    log = service.log.read_text()
    assert "failed ncentral login as 'mallory' from 203.0.113.7" in log
    assert "failed operator login as 'operator' from 203.0.113.7" in log
    assert "203.0.113.7 failed 10 logins" in log
    assert GUESS not in log, "a password is never logged, even a wrong one"


def test_x_forwarded_for_is_not_believed_from_an_untrusted_peer(
    server_factory: Callable[..., Service], tmp_path: Path
) -> None:
    service = server_factory(tmp_path / "log.db").start()
    for attempt in range(10):
        spoofed = {"X-Forwarded-For": f"198.51.100.{attempt}"}
        wrong = httpx.get(f"{service.url}/api/events", auth=("operator", GUESS), headers=spoofed)
        assert wrong.status_code == 401
    again = httpx.get(
        f"{service.url}/api/events", auth=OPERATOR, headers={"X-Forwarded-For": "198.51.100.99"}
    )
    assert again.status_code == 429, "a new X-Forwarded-For must not buy ten more guesses"
    assert "from 127.0.0.1" in service.log.read_text()


def test_a_request_without_credentials_is_not_a_failed_login(
    server_factory: Callable[..., Service], tmp_path: Path
) -> None:
    """A browser asks once without credentials before it prompts: that is no guess."""
    service = server_factory(tmp_path / "log.db").start()
    for _ in range(15):
        assert httpx.get(f"{service.url}/api/tickets").status_code == 401
    assert httpx.get(f"{service.url}/api/tickets", auth=OPERATOR).status_code == 200


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PSA_LEDGER_PASSWORD": "short-but-15-ch"}, "PSA_LEDGER_PASSWORD must be at least 16"),
        (
            {"PSA_LEDGER_OPERATOR_PASSWORD": "fifteen-chars!!"},
            "PSA_LEDGER_OPERATOR_PASSWORD must be at least 16",
        ),
        (
            {
                "PSA_LEDGER_PASSWORD": "the-same-for-both-roles",
                "PSA_LEDGER_OPERATOR_PASSWORD": "the-same-for-both-roles",
            },
            "PSA_LEDGER_PASSWORD and PSA_LEDGER_OPERATOR_PASSWORD are the same",
        ),
        ({"PSA_LEDGER_TRUSTED_PROXIES": "10.0.0.1, proxy.lan"}, "PSA_LEDGER_TRUSTED_PROXIES"),
    ],
)
def test_weak_or_shared_passwords_stop_serve_with_one_line(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "serve"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PSA_LEDGER_PORT": "1", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: "), done.stderr
    assert named in done.stderr
    for name, value in env.items():
        if "PASSWORD" in name:
            assert value not in done.stderr, "the message never repeats a password"


def test_the_wait_ends_a_minute_after_the_oldest_of_the_last_ten_failures() -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(10):
        assert throttle.wait("192.0.2.1") is None
        throttle.failed("192.0.2.1")
        now[0] += 1
    assert throttle.wait("192.0.2.1") == 50  # failures at 0..9 s, now 10 s: until 60 s
    assert throttle.wait("192.0.2.2") is None
    now[0] += 50
    assert throttle.wait("192.0.2.1") is None, "a minute after the first failure, one more try"
    throttle.failed("192.0.2.1")
    assert throttle.wait("192.0.2.1") == 1, "and then a wait until a minute after the second"


def test_an_ipv6_client_cannot_rotate_through_its_own_64() -> None:
    throttle = LoginThrottle()
    for host in range(10):
        throttle.failed(f"2001:db8:1:2::{host:x}")
    assert throttle.wait("2001:db8:1:2:ffff::1") is not None
    assert throttle.wait("2001:db8:1:3::1") is None


def test_memory_stays_bounded_however_many_addresses_guess() -> None:
    throttle = LoginThrottle()
    tracemalloc.start()
    try:
        for n in range(12_000):
            for _ in range(10):
                throttle.failed(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(throttle) == throttle.capacity == 10_000
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
    assert throttle.wait("10.0.46.223") is not None, "the most recent guessers are remembered"


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("192.0.2.9", ["203.0.113.1"], "192.0.2.9"),  # peer is no trusted proxy
        ("10.0.0.1", ["203.0.113.1"], "203.0.113.1"),
        ("10.0.0.1", ["6.6.6.6, 203.0.113.1"], "203.0.113.1"),  # left of it: the client's words
        ("10.0.0.1", ["203.0.113.1, 10.0.0.2"], "203.0.113.1"),  # proxies chained
        ("10.0.0.1", ["203.0.113.1:4711"], "203.0.113.1"),
        ("10.0.0.1", ["[2001:db8::5]:4711"], "2001:db8::5"),
        ("10.0.0.1", ["10.0.0.3"], "10.0.0.3"),  # all trusted: the furthest
        ("10.0.0.1", [], "10.0.0.1"),
        ("::ffff:10.0.0.1", ["203.0.113.1"], "203.0.113.1"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert ClientAddress(parse_networks("10.0.0.0/24")).of(peer, forwarded) == client

"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary folder, a free port.

The PostgreSQL backend must be tested on a real server, and a run that cannot start one
must say so: `throwaway_postgres` fails the tests that need it (it never skips them), so a
green run always means the backend was exercised. Debian's `postgresql` package is
installed with apt-get when it is missing and we are root, as `browser.ensure_chromium`
does for Chromium. PostgreSQL refuses to run as root, so as root the cluster belongs to
the `postgres` system user; its data, socket and log live in one temporary folder that is
removed with the server. Authentication is `trust` on 127.0.0.1 only: nothing but this
machine's tests can reach it, and it lives no longer than the test session.

`replicated_postgres` starts two more such clusters, a primary and a standby streaming
from it with synchronous replication, for the failover test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import pytest

from tests.support.debian import CannotInstall, apt_install
from tests.support.live import free_port

DEBIAN_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT = 60.0


@dataclass
class Postgres:
    """A running server. `url` is its `postgres` database; `create_database` makes fresh ones."""

    bin_dir: Path
    port: int
    socket_dir: Path
    _names: Iterator[int] = field(default_factory=lambda: count(1), repr=False)

    @property
    def url(self) -> str:
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(
        self, *, icu_locale: str | None = None, tablespace: str | None = None
    ) -> str:
        """A new, empty database (copied from `template1`); its URL.

        With `icu_locale` (such as "en-US") it sorts text by that ICU collation, as an
        administrator's database often does, instead of the cluster's C.UTF-8. With
        `tablespace` its files live there (`create_tablespace`).
        """
        name = f"test_{next(self._names)}"
        options = ""
        if icu_locale is not None:
            options += f" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'"
        if tablespace is not None:
            options += f' TABLESPACE "{tablespace}"'
        self.psql(f'CREATE DATABASE "{name}"{options}')
        return self.url_of(name)

    def create_tablespace(self, folder: Path) -> str:
        """A tablespace in `folder` (an empty folder the server's user may write); its name."""
        name = f"space_{next(self._names)}"
        owner = _owner()
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        self.psql(f"CREATE TABLESPACE \"{name}\" LOCATION '{folder}'")
        return name

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run `sql` with Debian's psql, as a person at the server would; its output."""
        done = subprocess.run(
            [
                *(str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
                *("-d", self.url_of(database), "-c", sql),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise AssertionError(f"psql {sql!r} failed: {done.stderr.strip()}")
        return done.stdout


@contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """Start a fresh cluster, yield it once it accepts connections, then stop and delete it."""
    bin_dir = _binaries()
    owner = _owner()
    folder = Path(tempfile.mkdtemp(prefix="psa-ledger-pg-"))
    try:
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        _initdb(bin_dir, folder, owner)
        server, port = _start(bin_dir, folder, owner)
        try:
            yield Postgres(bin_dir=bin_dir, port=port, socket_dir=folder)
        finally:
            _stop(server)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Replicated:
    """A primary and its streaming standby, in synchronous replication, each its own cluster."""

    primary: Postgres
    standby: Postgres
    _primary_server: subprocess.Popen[bytes]
    _standby_server: subprocess.Popen[bytes]

    @contextmanager
    def standby_not_receiving(self) -> Iterator[None]:
        """The primary's WAL sender stopped (SIGSTOP), as a slow or cut link would hold
        it: with synchronous replication the primary's commits wait for the standby;
        without, they run ahead of it. (Stopping the standby's receiver instead would not
        do: what was sent waits in its socket and is read after the crash.)"""
        senders = [
            pid
            for pid in _children(self._primary_server.pid)
            if b"walsender" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert senders, "the primary has no WAL sender"
        for pid in senders:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in senders:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def crash_primary(self) -> None:
        """SIGKILL the primary's postmaster and every process it started: no shutdown."""
        children = _children(self._primary_server.pid)
        self._primary_server.kill()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._primary_server.wait()

    def promote_standby(self) -> None:
        """Make the standby a primary; returns once it takes writes."""
        self.standby.psql("SELECT pg_promote(wait => true, wait_seconds => 60)")


@contextmanager
def replicated_postgres() -> Iterator[Replicated]:
    """A fresh primary, a standby made from it with `pg_basebackup`, streaming, and then
    `synchronous_standby_names = '*'`: a commit returns once the standby has it."""
    bin_dir = _binaries()
    owner = _owner()
    folders = [Path(tempfile.mkdtemp(prefix=f"psa-ledger-pg-{role}-")) for role in ("p", "s")]
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for folder in folders:
            if owner is not None:
                os.chown(folder, owner.pw_uid, owner.pw_gid)
        _initdb(bin_dir, folders[0], owner)
        server, port = _start(bin_dir, folders[0], owner)
        servers.append(server)
        primary = Postgres(bin_dir=bin_dir, port=port, socket_dir=folders[0])
        _base_backup(bin_dir, primary, folders[1], owner)
        standby_server, standby_port = _start(bin_dir, folders[1], owner)
        servers.append(standby_server)
        standby = Postgres(bin_dir=bin_dir, port=standby_port, socket_dir=folders[1])
        _wait_streaming(primary)
        primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        primary.psql("SELECT pg_reload_conf()")
        _wait_streaming(primary, state="sync")
        yield Replicated(primary, standby, server, standby_server)
    finally:
        for server in servers:
            _stop(server)
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def _binaries() -> Path:
    """The newest installed server's bin folder; installs Debian's `postgresql` if needed."""
    found = _installed()
    if found is None:
        _install()
        found = _installed()
    if found is None:
        pytest.fail(f"PostgreSQL was installed but no initdb is under {DEBIAN_ROOT}/*/bin")
    return found


def _installed() -> Path | None:
    candidates = [p.parent for p in DEBIAN_ROOT.glob("*/bin/initdb")]
    return max(candidates, key=lambda p: int(p.parent.name), default=None)


def _install() -> None:
    try:
        apt_install("postgresql", recommends=False)
    except CannotInstall as exc:
        pytest.fail(
            "PostgreSQL is required to test the PostgreSQL backend and is not installed, and"
            f" cannot be installed here ({exc}): run as root, or install it yourself"
        )


def _owner() -> pwd.struct_passwd | None:
    """Who runs the server: `postgres` when we are root (PostgreSQL refuses root), else us."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root, but there is no `postgres` system user to run PostgreSQL")


def _run_as(owner: pwd.struct_passwd | None) -> dict[str, object]:
    """subprocess arguments that drop root for `owner`."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": [], "cwd": "/"}


def _initdb(bin_dir: Path, folder: Path, owner: pwd.struct_passwd | None) -> None:
    _run_tool(
        [
            *(str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "postgres"),
            *("--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"),
        ],
        owner,
    )


def _start(
    bin_dir: Path, folder: Path, owner: pwd.struct_passwd | None
) -> tuple[subprocess.Popen[bytes], int]:
    """The postmaster in the foreground (we own its pid), and the port it listens on.

    A free port can be taken between our probe and the server's bind, so a start that
    fails on its port is tried again on another.
    """
    log = folder / "server.log"
    problem = ""
    for _ in range(3):
        port = free_port()
        with log.open("ab") as sink:
            server = subprocess.Popen(
                [
                    *(str(bin_dir / "postgres"), "-D", str(folder / "data"), "-p", str(port)),
                    *("-c", "listen_addresses=127.0.0.1"),
                    *("-c", f"unix_socket_directories={folder}"),
                    *("-c", "max_connections=200"),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                **_run_as(owner),
            )
        if _ready(bin_dir, port, server):
            return server, port
        _stop(server)
        problem = log.read_text(errors="replace")[-2000:]
    pytest.fail(f"PostgreSQL did not start; its log ends with:\n{problem}")


def _ready(bin_dir: Path, port: int, server: subprocess.Popen[bytes]) -> bool:
    """True once the server accepts connections; False if it died or never got there."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and server.poll() is None:
        probe = subprocess.run(
            [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
            timeout=30,
        )
        if probe.returncode == 0:
            return True
        time.sleep(0.05)
    return False


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: roll back, disconnect, stop); SIGKILL if it lingers."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _base_backup(
    bin_dir: Path, primary: Postgres, folder: Path, owner: pwd.struct_passwd | None
) -> None:
    """The standby's data folder, copied from the running primary; `-R` makes it a standby."""
    _run_tool(
        [
            *(str(bin_dir / "pg_basebackup"), "-D", str(folder / "data"), "-R", "--no-sync"),
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
        ],
        owner,
    )


def _run_tool(command: list[str], owner: pwd.struct_passwd | None) -> None:
    """One of PostgreSQL's programs, as the server's owner; the run fails with its words."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, **_run_as(owner))
    if done.returncode != 0:
        name = Path(command[0]).name
        pytest.fail(f"{name} failed: {done.stderr.strip() or done.stdout.strip()}")


def _wait_streaming(primary: Postgres, *, state: str = "async") -> None:
    query = f"SELECT count(*) FROM pg_stat_replication WHERE sync_state = '{state}'"
    deadline = time.monotonic() + START_TIMEOUT
    while primary.psql(query).strip() != "1":
        if time.monotonic() > deadline:
            pytest.fail(f"the standby never reached {state} streaming")
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found

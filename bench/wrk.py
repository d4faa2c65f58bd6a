"""wrk, the load generator: found or installed, run, and its figures read back.

A Python client on the same two cores would be the bottleneck, not the server; wrk (C,
LuaJIT) is not. It comes from Debian: installed with apt-get when missing and we are
root, and otherwise a benchmark that needs it says so and does not run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import msgspec

from tests.support.debian import CannotInstall, apt_install

__all__ = ["Result", "WrkMissing", "ensure_wrk", "run"]

MARK = "WRK_RESULT "


class WrkMissing(Exception):
    """wrk is not installed and cannot be installed here; the message says why."""


class Result(msgspec.Struct, frozen=True):
    """What a script's `done()` prints after `MARK`: counts, and latencies in µs."""

    requests: int
    duration_us: int
    p50_us: float
    p99_us: float
    max_us: float
    connect: int
    read: int
    write: int
    status: int
    timeout: int

    @property
    def per_second(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    @property
    def errors(self) -> int:
        """Socket errors, timeouts and answers that were not 2xx or 3xx."""
        return self.connect + self.read + self.write + self.status + self.timeout


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package first if needed and allowed."""
    found = shutil.which("wrk")
    if found:
        return found
    try:
        apt_install("wrk")
    except CannotInstall as exc:
        raise WrkMissing(f"wrk is missing and cannot be installed: {exc}") from None
    return shutil.which("wrk") or "wrk"


def run(
    url: str,
    script: Path,
    args: list[str],
    *,
    connections: int,
    seconds: int,
    threads: int = 2,
) -> Result:
    """One wrk run of `seconds` against `url`; the script's `done()` prints the figures."""
    command = [
        ensure_wrk(),
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        "--",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return msgspec.json.decode(line[len(MARK) :], type=Result)
    raise RuntimeError(f"wrk printed no result (exit {done.returncode}): {done.stderr[-500:]}")

"""Audit reads on a large log: filtered /api/events pages, export, verify.

Prints ratios against baselines measured in the same run, never a pass/fail on time:
a full scan of the log (what an unindexed filter would cost), and a request that touches
no database (`/healthz`, what HTTP alone costs). A filtered page "answers in
milliseconds" when it is a small fraction of the scan and close to the bare request.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.biglog import build_log
from bench.timing import median_seconds
from tests.support.harness import Server


def main(argv: list[str]) -> None:
    options = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="psa-ledger-bench-") as folder:
        db = Path(folder) / "big.db"
        started = time.perf_counter()
        count = build_log(db, options.events)
        built = time.perf_counter() - started
        print(f"built {count:,} events in {built:.1f} s ({count / built:,.0f} events/s)")
        scan = median_seconds(lambda: _full_scan(db), 3)
        print(f"baseline: full scan of the log {scan * 1000:.1f} ms")
        _pages(db, scan, count)
        _export(db, scan, count)
        if options.verify:
            _verify(db, scan, count)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--events", type=int, default=1_000_000, help="size of the log")
    parser.add_argument("--no-verify", dest="verify", action="store_false")
    return parser.parse_known_args(argv)[0]


def _full_scan(db: Path) -> None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        # `+action` keeps SQLite off the index: the cost of a filter with no index.
        conn.execute("SELECT COUNT(*) FROM events WHERE +action = 'REOPEN'").fetchone()


def _pages(db: Path, scan: float, count: int) -> None:
    server = Server(db)
    try:
        bare = median_seconds(lambda: server.operator.get("/healthz"), 50)
        print(f"baseline: GET /healthz {bare * 1000:.2f} ms")
        middle = _middle_time(db, count)
        deep = server.operator.get("/api/events", params={"limit": 1000}).json()["next"]
        cases: list[tuple[str, dict[str, Any]]] = [
            ("no filter", {}),
            ("ticket", {"ticket": "100042"}),
            ("action=REOPEN", {"action": "REOPEN"}),
            ("outcome=rejected", {"outcome": "rejected"}),
            ("actor=psa-ledger desc", {"actor": "psa-ledger", "order": "desc"}),
            ("since=middle", {"since": middle}),
            ("action+outcome+since", {"action": "UPDATE", "outcome": "rejected", "since": middle}),
            ("second page (cursor)", {"cursor": deep}),
            ("jsonl, limit=1000", {"format": "jsonl", "limit": 1000}),
        ]
        print(
            f"{'GET /api/events (limit 100)':<34}{'median ms':>10}{'x scan':>10}{'x healthz':>11}"
        )
        for name, params in cases:
            seconds = median_seconds(lambda p=params: _get(server.operator, p), 30)
            print(
                f"  {name:<32}{seconds * 1000:>10.2f}{seconds / scan:>10.4f}{seconds / bare:>11.1f}"
            )
    finally:
        server.stop()


def _get(client: httpx.Client, params: dict[str, Any]) -> None:
    response = client.get("/api/events", params={"limit": 100, **params})
    response.raise_for_status()


def _export(db: Path, scan: float, count: int) -> None:
    print("psa-ledger export (to /dev/null)")
    for name, extra in (
        ("all, jsonl", ["--format", "jsonl"]),
        ("all, csv", ["--format", "csv"]),
        ("action=REOPEN, jsonl", ["--format", "jsonl", "--action", "REOPEN"]),
        ("one ticket, jsonl", ["--format", "jsonl", "--ticket", "100042"]),
    ):
        seconds, rss = _run(["export", "--db", str(db), *extra])
        rate = f"{count / seconds:,.0f} events/s" if "all" in name else ""
        print(
            f"  {name:<24}{seconds:>8.2f} s  x scan {seconds / scan:>7.1f}"
            f"  max RSS {rss / 1024:>6.1f} MiB  {rate}"
        )


def _verify(db: Path, scan: float, count: int) -> None:
    seconds, rss = _run(["verify", "--db", str(db)])
    print(
        f"psa-ledger verify: {seconds:.1f} s, {count / seconds:,.0f} events/s,"
        f" x scan {seconds / scan:.0f}, max RSS {rss / 1024:.0f} MiB"
    )


def _run(args: list[str]) -> tuple[float, int]:
    """Wall time and peak memory (KiB) of one `psa-ledger` run.

    The peak is the child's own VmHWM: getrusage's maxrss would carry over the memory
    this process held when it forked, and hide whether the tool itself stays small.
    """
    started = time.perf_counter()
    with open(os.devnull, "w") as sink:
        done = subprocess.run(
            [sys.executable, "-c", _REPORT_PEAK, *args],
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"psa-ledger {' '.join(args)} exited {done.returncode}: {done.stderr}")
    peak = next(line for line in done.stderr.splitlines() if line.startswith("VmHWM:"))
    return seconds, int(peak.split()[1])


_REPORT_PEAK = """
import atexit, sys
from service.shell.cli import main

def peak():
    with open("/proc/self/status") as status:
        sys.stderr.write("".join(l for l in status if l.startswith("VmHWM:")))

atexit.register(peak)
sys.argv[0] = "psa-ledger"
main()
"""


def _middle_time(db: Path, count: int) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT recorded_at FROM events WHERE position = ?", (count // 2,))
        return str(row.fetchone()[0])

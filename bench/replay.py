"""Replay on a big log: `psa-ledger replay --at`, `diff` and `verify` against raw SQLite.

The baselines do the same job with nothing of ours in the way, each in its own Python
process like the tools, so process start counts on both sides:

- a state fold: `SELECT ticket_id, state_after FROM events ... ORDER BY position` into a
  dict, up to the moment `replay --at` is asked about (90% of the log); `diff` (from
  the 50% moment to the 90% one) is held to the same baseline;
- a hash scan: every column of every row read, one SHA-256 a row, standard library, one
  core; `verify` does that and re-derives every state and outcome.

The log comes from `bench.biglog`. Rounds alternate the commands so that a change in the
machine's load falls on all of them; the medians and their ratios are what to read
(baseline time / our time: 1.0x would be as fast as the raw read).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.biglog import build_log

__all__ = ["main"]

_FOLD = """
import sqlite3, sys
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
states = {}
for ticket_id, state in conn.execute(
    "SELECT ticket_id, state_after FROM events WHERE position <= ? ORDER BY position",
    (int(sys.argv[2]),),
):
    states[ticket_id] = state
print(len(states))
"""

_HASH_SCAN = """
import hashlib, sqlite3, sys
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = 0
for row in conn.execute("SELECT * FROM events ORDER BY position"):
    hashlib.sha256("\\x1f".join(map(str, row)).encode()).digest()
    rows += 1
print(rows)
"""


def main(argv: list[str] | None = None) -> dict[str, float]:
    options = _parse(argv or [])
    with tempfile.TemporaryDirectory(prefix="psa-ledger-replay-") as folder:
        db = Path(folder) / "big.db"
        started = time.perf_counter()
        count = build_log(db, options.events)
        print(f"built {count:,} events in {time.perf_counter() - started:.1f} s")
        late, middle = _moment(db, count * 9 // 10), _moment(db, count // 2)
        tool = [sys.executable, "-m", "service"]
        commands = {
            "fold": [sys.executable, "-c", _FOLD, str(db), str(count * 9 // 10)],
            "replay --at": [*tool, "replay", "--db", str(db), "--at", late],
            "diff": [*tool, "diff", "--db", str(db), middle, late],
            "hash scan": [sys.executable, "-c", _HASH_SCAN, str(db)],
            "verify": [*tool, "verify", "--db", str(db)],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for number in range(options.rounds):
            for name, command in commands.items():
                times[name].append(_run(command))
            shown = "  ".join(f"{name} {t[-1]:.2f} s" for name, t in times.items())
            print(f"round {number + 1}: {shown}")
    median = {name: statistics.median(t) for name, t in times.items()}
    ratios = {
        "replay --at": median["fold"] / median["replay --at"],
        "diff": median["fold"] / median["diff"],
        "verify": median["hash scan"] / median["verify"],
    }
    print(f"median of {options.rounds} round(s), {count:,} events, process start included:")
    for name, baseline in (("replay --at", "fold"), ("diff", "fold"), ("verify", "hash scan")):
        print(
            f"  psa-ledger {name:<12}{median[name]:>8.2f} s   baseline {baseline:<10}"
            f"{median[baseline]:>7.2f} s   {ratios[name]:.2f}x"
        )
    return {**median, **{f"{name} ratio": ratio for name, ratio in ratios.items()}}


def _moment(db: Path, position: int) -> str:
    """The time of the event at `position`: moments are given as times, as users give them."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT recorded_at FROM events WHERE position = ?", (position,))
        return str(row.fetchone()[0])


def _run(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[2:5]} exited {done.returncode}: {done.stderr[-500:]}")
    return seconds


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench replay")
    parser.add_argument("--events", type=int, default=300_000, help="size of the log")
    parser.add_argument("--million", action="store_true", help="a 1,000,000-event log")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each command")
    options = parser.parse_known_args(argv)[0]
    if options.million:
        options.events = 1_000_000
    return options

"""Replay on a big log: `psa-ledger replay --at`, `diff`, `as_of` and `verify` against raw
SQLite, and time travel from checkpoints against a replay from genesis.

The baselines do the same job with nothing of ours in the way, each in its own Python
process like the tools, so process start counts on both sides:

- a state fold: `SELECT ticket_id, state_after FROM events ... ORDER BY position` into a
  dict, up to the moment `replay --at` is asked about (95% of the log: on a log of a
  million events, half-way between two checkpoints of the default 100,000, the average
  case); `diff` (from the 55% moment to the 95% one) and `GET /api/tickets?as_of=` (a
  page of 100 at the 95% moment, asked of a running server: no process start) are held
  to the same baseline;
- a hash scan: every column of every row read, one SHA-256 a row, standard library, one
  core; `verify` does that and re-derives every state and outcome, and checks every
  checkpoint.

Time travel is also timed in this process: every ticket at a moment from the nearest
checkpoint (the tools' way) against the same fold from genesis, half an interval after a
checkpoint (the average) and one event before the next (the worst), three times a round.
Two figures each: the
state (the `Rewind`, which answers for any ticket, decoding a checkpoint's record only
when asked for it) and every ticket built (`tickets()`, what `replay --at` prints). The
checkpoints' size on disk is shown with them.

All of it runs on the SQLite file, then on a copy of the same log in PostgreSQL (a
throwaway server, as the tests start one; `--backend` picks one), where the baselines read
through psycopg, as plainly: the issue's targets hold on both backends.

The log comes from `bench.biglog` (`--db PATH` keeps it for the next run). Rounds
alternate the commands so that a change in the machine's load falls on all of them; the
medians and their ratios are what to read (baseline time / our time: 1.0x would be as
fast as the raw read; for time travel, checkpoint time / genesis time).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import servers
from bench.biglog import build_log
from service.audit.replay import rewind
from service.settings import Settings
from service.storage import checkpoints
from service.storage.backend import backend_for
from tests.support.backends import copied_to_postgres
from tests.support.postgres import throwaway_postgres

__all__ = ["main"]

# Each baseline is a script of its own, so that process start counts on both sides, for
# either backend: CONNECT opens the log, MARK is the driver's placeholder. On PostgreSQL
# each takes the rows as libpq hands them over, all at once: faster than a server-side
# cursor's batches (300,000 events: the fold 0.8 s against 1.3 s, the scan 1.6 s against
# 1.8 s), so the stricter baseline.
_FOLD = """
CONNECT
states = {}
for ticket_id, state in conn.execute(
    "SELECT ticket_id, state_after FROM events WHERE position <= MARK ORDER BY position",
    (int(sys.argv[2]),),
):
    states[ticket_id] = state
print(len(states))
"""

_HASH_SCAN = """
import hashlib
CONNECT
rows = 0
for row in conn.execute("SELECT * FROM events ORDER BY position"):
    hashlib.sha256("\\x1f".join(map(str, row)).encode()).digest()
    rows += 1
print(rows)
"""

_SQLITE = (
    'import sqlite3, sys\nconn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)',
    "?",
)
_POSTGRES = ("import psycopg, sys\nconn = psycopg.connect(sys.argv[1])", "%s")


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Each figure by name (PostgreSQL's prefixed `postgresql `), and each ratio."""
    options = _parse(argv or [])
    found: dict[str, float] = {}
    with _log(options) as (db, count):
        backends = servers.BACKENDS[options.backend]
        if "sqlite" in backends:
            print(f"on SQLite ({db})")
            found |= _measure(str(db), db, count, options.rounds, _SQLITE)
        if "postgresql" in backends:
            with throwaway_postgres() as server:
                started = time.perf_counter()
                url = copied_to_postgres(server, db)
                print(
                    f"on PostgreSQL (the same log, copied in {time.perf_counter() - started:.1f} s)"
                )
                measured = _measure(url, db, count, options.rounds, _POSTGRES)
            found |= {f"postgresql {name}": value for name, value in measured.items()}
    return found


def _measure(
    target: str, source: Path, count: int, rounds: int, driver: tuple[str, str]
) -> dict[str, float]:
    """Every figure on `target` (the file, or a PostgreSQL URL holding a copy of `source`),
    the baselines reading through `driver` (`_SQLITE`, `_POSTGRES`)."""
    late, middle = count * 19 // 20, count * 11 // 20
    tool = [sys.executable, "-m", "service"]
    fold, hash_scan = (_script(template, driver) for template in (_FOLD, _HASH_SCAN))
    commands = {
        "fold": [sys.executable, "-c", fold, target, str(late)],
        "replay --at": [*tool, "replay", "--db", target, "--at", _moment(source, late)],
        "diff": [*tool, "diff", "--db", target, _moment(source, middle), _moment(source, late)],
        "hash scan": [sys.executable, "-c", hash_scan, target],
        "verify": [*tool, "verify", "--db", target],
    }
    every = Settings().checkpoint_every
    checkpoint = late // every * every
    moments = {"average": checkpoint + every // 2, "worst": checkpoint + every - 1}
    moments = {name: min(max(p, 1), count) for name, p in moments.items()}
    sizes = _sizes(target)
    times: dict[str, list[float]] = {name: [] for name in [*commands, "as_of"]}
    with servers.psa_ledger(target) as port:
        for number in range(rounds):
            for name, command in commands.items():
                times[name].append(_run(command))
            times["as_of"].append(_as_of(port, late))
            for _ in range(_TIME_TRAVELS):
                for name, position in moments.items():
                    for way, took in _time_travel(target, position).items():
                        times.setdefault(f"{way} {name}", []).append(took)
            shown = "  ".join(f"{name} {t[-1]:.2f} s" for name, t in times.items())
            print(f"round {number + 1}: {shown}")
    median = {name: statistics.median(t) for name, t in times.items()}
    ratios = {
        "replay --at": median["fold"] / median["replay --at"],
        "diff": median["fold"] / median["diff"],
        "as_of": median["fold"] / median["as_of"],
        "verify": median["hash scan"] / median["verify"],
    }
    print(f"median of {rounds} round(s), {count:,} events, process start included:")
    rows = [("replay --at", "fold"), ("diff", "fold"), ("as_of", "fold"), ("verify", "hash scan")]
    for name, baseline in rows:
        print(
            f"  psa-ledger {name:<12}{median[name]:>8.2f} s   baseline {baseline:<10}"
            f"{median[baseline]:>7.2f} s   {ratios[name]:.2f}x"
        )
    print(f"time travel, in this process, checkpoints every {every:,} events ({sizes}):")
    for name, position in moments.items():
        for what, built in (("state", ""), ("every ticket built", " built")):
            ours, genesis = median[f"checkpoint{built} {name}"], median[f"genesis{built} {name}"]
            ratios[f"time travel{built} {name}"] = ours / genesis
            print(
                f"  at {position:>10,} ({name:<7}) {what:<18} from a checkpoint {ours:.3f} s,"
                f" from genesis {genesis:.3f} s   {ours / genesis:.3f}x"
            )
    return {**median, **{f"{name} ratio": ratio for name, ratio in ratios.items()}}


@contextmanager
def _log(options: argparse.Namespace) -> Iterator[tuple[Path, int]]:
    """The big log: `--db` if it holds one, else built there (or in a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="psa-ledger-replay-") as folder:
        db = options.db or Path(folder) / "big.db"
        count = _count(db) if db.exists() else 0
        if count == 0:
            started = time.perf_counter()
            count = build_log(db, options.events)
            print(f"built {count:,} events in {time.perf_counter() - started:.1f} s")
        else:
            print(f"reusing {db}: {count:,} events")
        yield db, count


def _count(db: Path) -> int:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])


def _as_of(port: int, position: int) -> float:
    """One page of tickets as of `position`, from the running server."""
    started = time.perf_counter()
    answer = httpx.get(
        f"http://127.0.0.1:{port}/api/tickets",
        params={"as_of": str(position), "limit": "100"},
        auth=("operator", "bench-operator-password"),
        timeout=600,
    )
    seconds = time.perf_counter() - started
    answer.raise_for_status()
    return seconds


#: Time travel takes a tenth of a second: each round times it this many times, alternating
#: with genesis, so that the other processes of a shared machine weigh less on the median.
_TIME_TRAVELS = 3


def _time_travel(db: str, position: int) -> dict[str, float]:
    """Every ticket at `position`, from genesis then from the nearest checkpoint: seconds
    to the state, and to every ticket built."""
    took: dict[str, float] = {}
    with closing(backend_for(db).connect_sync()) as conn:
        for way in ("genesis", "checkpoint"):
            took |= _timed_rewind(conn, position, way)
    return took


def _timed_rewind(conn: Any, position: int, way: str) -> dict[str, float]:
    """One way's times. Its tickets are freed when it returns, before the next way's clock
    starts: freeing 96,000 tickets took 30 ms, which the next way was charged before."""
    started = time.perf_counter()
    state = rewind(conn, position, from_genesis=way == "genesis")
    state_took = time.perf_counter() - started
    state.tickets()
    return {way: state_took, f"{way} built": time.perf_counter() - started}


def _script(template: str, driver: tuple[str, str]) -> str:
    connect, mark = driver
    return template.replace("CONNECT", connect).replace("MARK", mark)


def _sizes(db: str) -> str:
    """How many checkpoints of each kind, and their bytes as stored."""
    kinds = {"full": 0, "deltas": 0}
    size = 0
    with closing(backend_for(db).connect_sync()) as conn:
        for checkpoint in checkpoints.every(conn):
            held = checkpoints.raw_records_of(checkpoint)
            kinds["deltas" if held is not None and held.base else "full"] += 1
            size += len(checkpoint.snapshot)
    return f"{kinds['full']} full, {kinds['deltas']} deltas, {size / 1e6:.0f} MB"


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
    parser.add_argument("--db", type=Path, default=None, help="keep the log here, and reuse it")
    parser.add_argument(
        "--backend", choices=list(servers.BACKENDS), default="both", help="where to run"
    )
    options = parser.parse_known_args(argv)[0]
    if options.million:
        options.events = 1_000_000
    return options

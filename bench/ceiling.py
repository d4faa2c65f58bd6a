"""Ingest's ceiling: how far a cheaper log could take the real server, against the baseline.

`bench ingest` shows where psa-ledger stands against the bare Litestar app. This suite
shows how much of the gap the log itself is: the disk's fsync, and the structures the
audit API and the console read, which the write path keeps in the same transaction as the
events. Five servers run for the whole suite, and wrk loads each in turn with ingest's mix
(`ingest.lua`), round after round, the order reversed every other round:

- the baseline;
- psa-ledger as shipped, its log a file on disk;
- the same on a file in memory (`/dev/shm`, a tmpfs), where an fsync costs nothing;
- the same on disk, and in memory, each with the log's read structures dropped once it
  was made ("lean"): every secondary index of `events` and `tickets` but
  `events_by_ticket`, which keeps a ticket's stream unique, and the triggers that keep
  `ticket_tags`.

The lean logs are configurations no one may run: the audit API and the console need what
they drop, and a power cut takes back whatever tmpfs held. They are here as bounds. The
lean log on disk is what keeping every read structure out of the write transaction could
bring at best; the lean log in memory costs psa-ledger everything the log can save and
leaves the HTTP side and the ledger's own work as they are. Whatever share of the baseline
it reaches, no redesign of the schema and no faster disk can take the server past it.
SQLite only: the bound is the same question on both backends, and a tmpfs file is
SQLite's to have.
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import msgspec

from bench import ingest, servers, wrk
from service.storage.sqlite import connect_sync

__all__ = ["LOGS", "Round", "main", "read_structures"]

#: The psa-ledger servers, by the log each runs on: where its file is, and whether its
#: read structures are dropped.
LOGS = {
    "on disk": ("disk", False),
    "in memory": ("memory", False),
    "lean on disk": ("disk", True),
    "lean in memory": ("memory", True),
}
_MEMORY = Path("/dev/shm")


class Round(msgspec.Struct, frozen=True):
    connections: int
    baseline: wrk.Result
    #: Each psa-ledger server's run, by the names of LOGS.
    psa: dict[str, wrk.Result]

    def ratio(self, log: str) -> float:
        return self.psa[log].per_second / self.baseline.per_second


def main(argv: list[str] | None = None) -> list[Round] | None:
    """The rounds at each connection count; None, said why, when the suite cannot run."""
    options = ingest.load_options("python -m bench ceiling", argv or [])
    if not _MEMORY.is_dir():
        print(f"ceiling: cannot run: no {_MEMORY} to keep a log in memory")
        return None
    try:
        wrk.ensure_wrk()
    except wrk.WrkMissing as exc:
        print(f"ceiling: cannot run: {exc}")
        return None
    with ExitStack() as stack:
        folders = {
            "disk": Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="psa-ceiling-"))),
            "memory": Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="psa-ceiling-", dir=_MEMORY))
            ),
        }
        ports = {"baseline": stack.enter_context(servers.baseline())}
        for name, (where, lean) in LOGS.items():
            db = folders[where] / f"{name.replace(' ', '-')}.db"
            dropped = _make_log(db, lean=lean)
            if dropped:
                print(f"ceiling: {name} dropped {', '.join(dropped)}")
            ports[name] = stack.enter_context(servers.psa_ledger(db, create_mode="sync"))
        return _rounds(ports, options)


def read_structures(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """(type, name) of what the lean log drops: the secondary indexes of `events` and
    `tickets` (the automatic ones of UNIQUE columns cannot go) but `events_by_ticket`,
    and the triggers on `tickets`. Read from the file, so a structure added later is
    dropped too."""
    rows = db.execute(
        "SELECT type, name FROM sqlite_master WHERE tbl_name IN ('events', 'tickets')"
        " AND sql IS NOT NULL AND ((type = 'index' AND name != 'events_by_ticket')"
        " OR (type = 'trigger' AND tbl_name = 'tickets')) ORDER BY type, name"
    )
    return [(kind, name) for kind, name in rows]


def _make_log(db: Path, *, lean: bool) -> list[str]:
    """A new log at `db`, made as the server makes one; the names it dropped."""
    with closing(connect_sync(db, readonly=False)) as conn:
        if not lean:
            return []
        dropped = read_structures(conn)
        for kind, name in dropped:
            conn.execute(f"DROP {kind} {name}")
        return [name for _, name in dropped]


def _rounds(ports: dict[str, int], options: argparse.Namespace) -> list[Round]:
    print(f"ceiling: wrk runs of {options.seconds} s, {options.rounds} alternating round(s) each")
    print(_HEADER)
    rounds: list[Round] = []
    prefixes = (str(n) for n in itertools.count(1))
    for connections in options.connections:
        for number in range(options.rounds):
            prefix = next(prefixes)
            for log in LOGS:
                ingest.seed(ports[log], prefix, threads=min(2, connections))
            order = list(ports) if number % 2 == 0 else list(reversed(ports))
            runs = {
                name: ingest.load(ports[name], prefix, connections, options.seconds)
                for name in order
            }
            done = Round(connections, runs["baseline"], {log: runs[log] for log in LOGS})
            rounds.append(done)
            print(_row(f"{connections:>5} round {number + 1}", [done]))
        print(
            _row(f"{connections:>5} median ", [r for r in rounds if r.connections == connections])
        )
    for done in rounds:
        if done.baseline.errors or any(result.errors for result in done.psa.values()):
            print(f"ceiling: errors at {done.connections} connections: {done}")
    return rounds


_HEADER = f"{'conns':>5} {'':7} {'baseline/s':>11}" + "".join(
    f" {name + '/s':>16} {'x':>6}" for name in LOGS
)


def _row(label: str, rounds: list[Round]) -> str:
    def med(values: Iterator[float]) -> float:
        return statistics.median(list(values))

    cells = "".join(
        f" {med(r.psa[log].per_second for r in rounds):>16,.0f}"
        f" {med(r.ratio(log) for r in rounds):>5.2f}x"
        for log in LOGS
    )
    return f"{label:<13} {med(r.baseline.per_second for r in rounds):>11,.0f}{cells}"

"""Ingest: a real `psa-ledger serve` against the bare Litestar baseline, under wrk.

Both servers run for the whole suite, on the same uvicorn settings; wrk loads one, then
the other, round after round, so that whatever else the machine is doing falls on both
alike. The load is N-central's mix (`ingest.lua`: 4 CREATE, 4 UPDATE, 1 RESOLVE,
1 REOPEN in ten, realistic bodies, Basic auth); the ledger runs as shipped: sync mode,
`synchronous=FULL`, every 2xx durable. Printed per round and as the median of the rounds:
requests per second, p99 latency, and psa-ledger's share of the baseline. psa-ledger runs
on a new SQLite file, then on a new database on a throwaway PostgreSQL server
(`--backend`), each against the baseline in rounds of its own.

Each round also runs the write path alone (`bench.writepath`: the same `Ledger` in this
process, on a log of its own, as many submitters as connections, no HTTP), and prints its
share of the same round's baseline: the most the server could reach at that many
connections, however cheap its HTTP side became.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import msgspec

from bench import servers, writepath, wrk

__all__ = ["Round", "load", "load_options", "main", "seed"]

SCRIPT = Path(__file__).with_name("ingest.lua")
#: Cycles of ten between requests that touch the same ticket (see ingest.lua): 320 requests
#: of one wrk thread, ~140 ms at 64 connections on PostgreSQL. A request slower than that
#: window is overtaken by the next one on its ticket (an UPDATE before its CREATE: 404,
#: 409), which N-central, waiting for each answer, never does. At 8 cycles (~35 ms) the
#: slowest 1 in 15,000 were (max latency 52-84 ms).
LAG = 32


class Round(msgspec.Struct, frozen=True):
    connections: int
    baseline: wrk.Result
    psa: wrk.Result
    alone: writepath.Alone

    @property
    def ratio(self) -> float:
        return self.psa.per_second / self.baseline.per_second

    @property
    def p99_ratio(self) -> float:
        return self.psa.p99_us / self.baseline.p99_us

    @property
    def alone_ratio(self) -> float:
        return self.alone.per_second / self.baseline.per_second


def main(argv: list[str] | None = None) -> dict[str, list[Round]] | None:
    """Each backend's rounds, by name; None when wrk cannot be had."""
    options = load_options("python -m bench ingest", argv or [], backend=True)
    return servers.on_each_backend(
        "ingest", options.backend, partial(_rounds, options=options), logs=2
    )


def load(port: int, prefix: str, connections: int, seconds: int) -> wrk.Result:
    """wrk's run of the mix on the server at `port`, on the tickets `seed` made for `prefix`."""
    url = f"http://127.0.0.1:{port}"
    return wrk.run(
        url, SCRIPT, [prefix, str(LAG), servers.AUTH], connections=connections, seconds=seconds
    )


def seed(port: int, prefix: str, *, threads: int) -> None:
    """Create the tickets the first 3*LAG cycles of each wrk thread refer to.

    Cycle -j's tickets must be open for the UPDATEs (j <= LAG), its first ticket open for
    the RESOLVE (j <= 2*LAG) and closed for the REOPEN (j <= 3*LAG); see ingest.lua.
    """
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": servers.AUTH}
    ) as client:
        for thread in range(threads):
            created = [4 * c + s for c in range(-LAG, 0) for s in range(4)]
            created += [4 * c for c in range(-3 * LAG, -LAG)]
            resolved = [4 * c for c in range(-3 * LAG, -2 * LAG)]
            for action, indexes in (("CREATE", created), ("RESOLVE", resolved)):
                for index in indexes:
                    ticket = f"{prefix}{thread:02d}{index + 12 * LAG:08d}"
                    answer = client.put("/ncentral/tickets", content=writepath.body(action, ticket))
                    answer.raise_for_status()


def load_options(prog: str, argv: list[str], *, backend: bool = False) -> argparse.Namespace:
    """The options of a suite that loads servers with this mix (`--seconds`, `--rounds`,
    `--connections`, `--quick`), and `--backend` when it runs on either."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server")
    parser.add_argument(
        "--connections",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[16, 64],
        help="comma-separated connection counts",
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s at each count")
    if backend:
        parser.add_argument("--backend", choices=list(servers.BACKENDS), default="both")
    options = parser.parse_known_args(argv)[0]
    if options.quick:
        options.seconds, options.rounds = 2, 1
    return options


def _rounds(db: Path | str, alone_db: Path | str, options: argparse.Namespace) -> list[Round]:
    rounds: list[Round] = []
    prefixes = (str(n) for n in itertools.count(1))
    with servers.baseline() as bare, servers.psa_ledger(db, create_mode="sync") as psa:
        print(
            f"ingest: wrk runs of {options.seconds} s, {options.rounds} alternating round(s) each;"
            " psa-ledger sync mode, synchronous=FULL"
        )
        print(_HEADER)
        for connections in options.connections:
            for number in range(options.rounds):
                prefix = next(prefixes)
                seed(psa, prefix, threads=min(2, connections))
                seconds = options.seconds
                runs = {
                    "baseline": partial(load, bare, prefix, connections, seconds),
                    "psa": partial(load, psa, prefix, connections, seconds),
                    "alone": partial(
                        writepath.run, alone_db, prefix, connections=connections, seconds=seconds
                    ),
                }
                done = _round(runs, connections, backwards=number % 2 == 1)
                rounds.append(done)
                print(_row(f"{connections:>5} round {number + 1}", [done]))
            print(_row(f"{connections:>5} median ", _of(rounds, connections)))
    for done in rounds:
        if done.psa.errors or done.baseline.errors or done.alone.errors:
            print(f"ingest: errors at {done.connections} connections: {done}")
    return rounds


def _round(runs: dict[str, Callable[[], Any]], connections: int, *, backwards: bool) -> Round:
    """One run of each, in the order of `runs` (the two servers under wrk, then the write
    path alone) or the other way round when `backwards`, so that none always meets a
    warmer machine."""
    results = {name: runs[name]() for name in (reversed(runs) if backwards else runs)}
    return Round(connections, results["baseline"], results["psa"], results["alone"])


_HEADER = (
    f"{'conns':>5} {'':7} {'baseline/s':>11} {'p99 ms':>7} {'psa/s':>8} {'p99 ms':>7}"
    f" {'psa/base':>9} {'p99 x':>6} {'alone/s':>8} {'alone/base':>11}"
)


def _row(label: str, rounds: list[Round]) -> str:
    def med(values: Iterator[float]) -> float:
        return statistics.median(list(values))

    base = med(r.baseline.per_second for r in rounds)
    psa = med(r.psa.per_second for r in rounds)
    return (
        f"{label:<13} {base:>11,.0f} {med(r.baseline.p99_us for r in rounds) / 1000:>7.1f}"
        f" {psa:>8,.0f} {med(r.psa.p99_us for r in rounds) / 1000:>7.1f}"
        f" {med(r.ratio for r in rounds):>8.2f}x {med(r.p99_ratio for r in rounds):>5.1f}x"
        f" {med(r.alone.per_second for r in rounds):>8,.0f}"
        f" {med(r.alone_ratio for r in rounds):>10.2f}x"
    )


def _of(rounds: list[Round], connections: int) -> list[Round]:
    return [r for r in rounds if r.connections == connections]

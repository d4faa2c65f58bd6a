"""Flat memory: a real `psa-ledger serve`'s resident set while it ingests N-central's load.

wrk sends the ingest mix (`ingest.lua`, as `bench.ingest` does) in slices; after each
slice the server's resident set (`VmRSS` in /proc/<pid>/status) is read. The first tenth
of the requests is the warm-up (caches fill, the allocator finds its size); after it the
resident set must stay within 10% of the smallest sample. `--long` sends 1,000,000
requests (minutes: outside `make test`); the default is a short smoke of 20,000. The
server runs on a SQLite file, then on a throwaway PostgreSQL server (`--backend`).
"""

from __future__ import annotations

import argparse
import itertools
from functools import partial
from pathlib import Path

import msgspec

from bench import ingest, servers, wrk

__all__ = ["Sample", "main"]

#: After warm-up, the resident set may vary this much (a share of the smallest sample).
FLAT = 0.10


class Sample(msgspec.Struct, frozen=True):
    requests: int
    rss_mb: float


def main(argv: list[str] | None = None) -> dict[str, list[Sample]] | None:
    """Each backend's samples, by name; None when wrk cannot be had."""
    options = _parse(argv or [])
    return servers.on_each_backend("memory", options.backend, partial(_sampled, options=options))


def _sampled(db: Path | str, options: argparse.Namespace) -> list[Sample]:
    """The server's resident set after each slice of the load."""
    samples: list[Sample] = []
    prefixes = (str(n) for n in itertools.count(1))
    port = servers.free_port()
    settings = {"create_mode": "sync"}
    if options.checkpoint_every:
        settings["checkpoint_every"] = str(options.checkpoint_every)
    server = servers.psa_ledger_process(db, port, **settings)
    try:
        sent = 0
        print(f"memory: {options.requests:,} requests, wrk slices of {options.seconds} s")
        while sent < options.requests:
            prefix = next(prefixes)
            ingest.seed(port, prefix, threads=2)
            done = wrk.run(
                f"http://127.0.0.1:{port}",
                ingest.SCRIPT,
                [prefix, str(ingest.LAG), servers.AUTH],
                connections=options.connections,
                seconds=options.seconds,
            )
            if done.errors:
                print(f"memory: {done.errors} errors in a slice: {done}")
            sent += done.requests
            samples.append(Sample(sent, _rss_mb(server.pid)))
            print(f"  {sent:>10,} requests   RSS {samples[-1].rss_mb:7.1f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)
    _report(samples, options.requests)
    return samples


def _report(samples: list[Sample], requests: int) -> None:
    settled = [s for s in samples if s.requests >= requests // 10] or samples[-1:]
    low = min(s.rss_mb for s in settled)
    high = max(s.rss_mb for s in settled)
    spread = (high - low) / low
    verdict = "flat" if spread <= FLAT else "NOT flat"
    print(
        f"after warm-up ({len(settled)} samples from {settled[0].requests:,} requests):"
        f" RSS {low:.1f}-{high:.1f} MB, spread {spread:.1%} ({verdict}: limit {FLAT:.0%})"
    )


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench memory")
    parser.add_argument("--long", action="store_true", help="1,000,000 requests")
    parser.add_argument("--requests", type=int, default=20_000, help="requests to send")
    parser.add_argument("--slice", dest="seconds", type=int, default=0, help="seconds a slice")
    parser.add_argument("--memory-connections", dest="connections", type=int, default=16)
    parser.add_argument("--checkpoint-every", type=int, default=0, help="the server's setting")
    parser.add_argument("--backend", choices=list(servers.BACKENDS), default="both")
    options = parser.parse_known_args(argv)[0]
    if options.long:
        options.requests = 1_000_000
    if options.seconds == 0:
        options.seconds = 20 if options.long else 2
    return options

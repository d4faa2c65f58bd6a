"""How a serving process sets up the interpreter: the garbage collector and the GIL.

`psa-ledger serve` calls `for_serving` once its app is built. The benchmarks that run the
`Ledger` inside their own process call it too, so that they time the writer as it runs
in production, not under the interpreter's defaults.
"""

from __future__ import annotations

import gc
import sys

__all__ = ["collect_less", "for_serving", "hand_over_sooner"]


def for_serving() -> None:
    """Both settings below, once everything the process serves with is loaded."""
    collect_less()
    hand_over_sooner()


def collect_less() -> None:
    """Keep the cyclic garbage collector off the event loop's back while serving.

    At Python's default a young collection ran every 20 requests or so, and each old one
    walked every module, class and function loaded at start: about 30 us of the event
    loop's CPU a request under N-central's load (bench/results.md, "Follow-up"). What is
    loaded by now lives as long as the process, so it is frozen out of the collector's
    walks; and the young generation is collected after 10,000 allocations instead of 700.
    Garbage without cycles is freed at once either way; cycles simply wait a little longer.
    """
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def hand_over_sooner() -> None:
    """Let the SQLite writer's thread have the interpreter within a tenth of a millisecond.

    The thread gives up the GIL around every statement it runs and the COMMIT's fsync;
    to take it back it waits for the busy event loop to reach the switch interval, 5 ms
    by default. A batch's COMMIT takes it twice: to start, and to hand its result back.
    Under N-central's load a batch waited ~1.6 ms (median) for its thread to start at
    5 ms, ~0.6 ms at 0.5 ms (bench/results.md, "Third round"), and 0.3 ms at 0.1 ms
    (round 21). At 16 connections, where each batch waits for the one before, that
    wait was a quarter of a batch's cycle: ingest went 0.29x -> 0.335x of bare Litestar
    (medians of six alternated runs), and did not move at 64 connections. At 0.05 ms
    ingest at 64 connections fell (0.42-0.47x in three runs).
    """
    sys.setswitchinterval(0.0001)

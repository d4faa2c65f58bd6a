"""`python -m service.shell.checkpoint [--db LOG]`: a checkpoint for each line read on its
input, each answered with one line, in a process that loads only what making them needs.

The service makes a checkpoint every N events through this process (`ledger.checkpoints`),
under N-central's load every second or two. `python -m service checkpoint` loads every
shell tool, the audit side and psycopg before it starts: 0.25 s of CPU a run, on the
cores that serve the requests, for a checkpoint that itself takes a few hundredths of
a second (bench/results.md, "Ingest, round seven"). This module loads the checkpoint
code and the log's backend alone, and the service keeps it running from one checkpoint
to the next, since even that start cost 0.15 s of CPU on PostgreSQL (bench/results.md,
"Round 20"). `psa-ledger checkpoint` calls the same `make`.
"""

from __future__ import annotations

import argparse
import os
import sys

from service.storage import checkpoints
from service.storage.backend import backend_for

__all__ = ["Unreadable", "main", "make"]


class Unreadable(Exception):
    """The log cannot be opened; the message says which and why."""


def make(db: str) -> str:
    """Store a checkpoint of the log `db` now; returns what was done, in one line."""
    backend = backend_for(db)
    try:
        conn = backend.connect_sync(readonly=True)
    except backend.refusals as exc:
        raise Unreadable(f"cannot read {backend.display}: {exc}") from None
    try:
        base = checkpoints.delta_base(conn)
        made = checkpoints.current(conn, base)
    finally:
        conn.close()
    if made is None:
        return "checkpoint: the log is empty"
    writer = backend.connect_sync(readonly=False)
    try:
        stored = checkpoints.store(writer, made)
    finally:
        writer.close()
    what = "stored" if stored else "already stored"
    return (
        f"checkpoint: {what} at position {made.position}: {made.tickets} tickets,"
        f" {len(made.snapshot)} bytes" + (f" (changed since position {base})" if base else "")
    )


def main(argv: list[str] | None = None) -> int:
    """Until its input ends: for each line read, a checkpoint, and a line that says it."""
    parser = argparse.ArgumentParser(prog="python -m service.shell.checkpoint")
    parser.add_argument(
        "--db",
        default=os.environ.get("PSA_LEDGER_DB"),
        help="the event log: a file or a URL (default: PSA_LEDGER_DB, which `ps` does not show)",
    )
    options = parser.parse_args(argv)
    if not options.db:
        parser.error("the log is named by --db or PSA_LEDGER_DB")
    for _ in sys.stdin:
        print(_answer(options.db), flush=True)
    return 0


def _answer(db: str) -> str:
    """`make`'s line, or why no checkpoint was made, on one line though a database's
    message may hold several: the service logs it, and the next multiple tries again."""
    try:
        return make(db)
    except Unreadable as exc:
        why = str(exc)
    except Exception as exc:
        why = repr(exc)
    return " ".join(f"checkpoint not made: {why}".split())


if __name__ == "__main__":
    sys.exit(main())

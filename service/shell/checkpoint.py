"""`python -m service.shell.checkpoint --db LOG`: one checkpoint, in a process that loads
only what making it needs.

The service makes a checkpoint every N events by running this (`ledger.checkpoints`),
under N-central's load every few seconds. `python -m service checkpoint` loads every
shell tool, the audit side and psycopg before it starts: 0.25 s of CPU a run, on the
cores that serve the requests, for a checkpoint that itself takes a few hundredths of
a second (bench/results.md, "Ingest, round seven"). This module loads the checkpoint
code and the log's backend alone; `psa-ledger checkpoint` calls the same `make`.
"""

from __future__ import annotations

import argparse
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
    parser = argparse.ArgumentParser(prog="python -m service.shell.checkpoint")
    parser.add_argument("--db", required=True, help="the event log: a file or a URL")
    options = parser.parse_args(argv)
    try:
        print(make(options.db))
    except Unreadable as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

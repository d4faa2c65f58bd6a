"""`python -m bench [SUITE ...] [--scale F] [--events N] [--quick] ...`: run benchmark suites.

Suites are modules with a `main(argv)` that read the options they know and print ratios
against a baseline measured in the same run; add one to SUITES to have `make bench` run it.
Name suites (`python -m bench ingest`) to run only those; with no name, all run in turn.
"""

from __future__ import annotations

import importlib
import sys

from service import tuning

SUITES = [
    "ledger",
    "http",
    "ingest",
    "ceiling",
    "cpu",
    "audit",
    "replay",
    "memory",
    "console",
    "postgres",
]


def main(argv: list[str]) -> None:
    chosen = [name for name in argv if name in SUITES] or SUITES
    options = [arg for arg in argv if arg not in SUITES]
    for name in chosen:
        print(f"== bench.{name}", flush=True)
        suite = importlib.import_module(f"bench.{name}")
        # The suites that run the `Ledger` in this process (ledger, postgres) time it with
        # the interpreter set up as `serve` sets it up, once the code is loaded. Not in
        # each suite's `main`: the tests call those, and must keep the defaults.
        tuning.for_serving()
        suite.main(options)


if __name__ == "__main__":
    main(sys.argv[1:])

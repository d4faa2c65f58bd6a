"""`python -m bench [--scale F] [--events N]`: run each benchmark suite in turn.

Suites are modules with a `main(argv)` that read the options they know and print ratios
against a baseline measured in the same run; add one to SUITES to have `make bench` run it.
"""

from __future__ import annotations

import importlib
import sys

SUITES = ["bench.ledger", "bench.http", "bench.audit"]


def main(argv: list[str]) -> None:
    for name in SUITES:
        print(f"== {name}", flush=True)
        importlib.import_module(name).main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])

"""`python -m bench [--events N]`: run each benchmark suite in turn.

Suites are modules with a `main(argv)`; add one to SUITES to have `make bench` run it.
"""

from __future__ import annotations

import importlib
import sys

SUITES = ["bench.audit"]


def main(argv: list[str]) -> None:
    for name in SUITES:
        print(f"== {name}", flush=True)
        importlib.import_module(name).main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])

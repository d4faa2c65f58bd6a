"""`make bench`: run every benchmark module at full scale (`--scale 0.01` for a smoke run)."""

from __future__ import annotations

import argparse
import importlib

MODULES = ["bench.ledger", "bench.http"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size")
    parser.add_argument("only", nargs="*", help="module names, e.g. bench.ledger")
    args = parser.parse_args()
    for name in args.only or MODULES:
        importlib.import_module(name).main(args.scale)


if __name__ == "__main__":
    main()

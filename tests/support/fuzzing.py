"""How hard the property tests look: a little in `make test`, many times over in `make fuzz`.

`PSA_LEDGER_FUZZ` (a whole number, 1 when unset) multiplies every property test's
examples: the tests that name their own count ask `examples`, the rest take hypothesis's
default through the profile `load_profile` sets. `make test` stays a few minutes; `make
fuzz` runs only the property tests (hypothesis's own `hypothesis` mark, which the tests
that build their strategy inside the test body carry by hand).
"""

from __future__ import annotations

import os

from hypothesis import settings

__all__ = ["SCALE", "examples", "load_profile"]


def _scale() -> int:
    given = os.environ.get("PSA_LEDGER_FUZZ", "1")
    if not given.isdigit() or int(given) < 1:
        raise SystemExit(f"PSA_LEDGER_FUZZ must be a whole number of 1 or more, not {given!r}")
    return int(given)


#: How many times `make test`'s examples each property test tries.
SCALE = _scale()


def examples(count: int) -> int:
    """`count` examples as `make test` runs them, scaled by `PSA_LEDGER_FUZZ`."""
    return count * SCALE


def load_profile() -> None:
    """The default number of examples (hypothesis's 100), scaled by `PSA_LEDGER_FUZZ`."""
    settings.register_profile("psa-ledger", max_examples=examples(settings.default.max_examples))
    settings.load_profile("psa-ledger")

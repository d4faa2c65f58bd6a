"""On a generated 20k-event log: every filter walks an index, and verify agrees it is lawful.

Timings belong to `make bench`; here only what does not depend on the machine: the plan.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.biglog import build_log
from service.audit.events import EventFilter, Order, explain
from service.storage.sqlite import connect_sync
from tests.support.harness import cli


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "log.db"
    build_log(path, 20_000, check=True)
    return path


FILTERS = [
    EventFilter(),
    EventFilter(ticket="100042"),
    EventFilter(action="REOPEN"),
    EventFilter(outcome="rejected"),
    EventFilter(actor="psa-ledger"),
    EventFilter(action="UPDATE", outcome="rejected"),
    EventFilter(ticket="100042", action="UPDATE", since="2024-01-01T00:00:05Z"),
]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("where", FILTERS, ids=lambda f: repr(f)[12:-1] or "none")
def test_every_filter_walks_an_index(big: Path, where: EventFilter, order: Order) -> None:
    db = connect_sync(big)
    plan = explain(db, where, order)
    db.close()
    assert all(step.startswith("SEARCH events USING") for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_the_generated_log_verifies_and_pages(big: Path) -> None:
    done = cli("verify", "--every", "5000", db=big)
    assert "OK: 20000 events, 2000 tickets" in done.stdout
    assert "verify: 20000/20000 events (100%)" in done.stderr

"""On a generated 20k-event log: every filter walks an index, and verify agrees it is lawful.

Timings belong to `make bench`; here only what does not depend on the machine: the plan.
On PostgreSQL the same log is copied in (`migrate`'s copy) and ANALYZEd, and the plan is
the one PostgreSQL's own planner picks, read from `EXPLAIN (FORMAT JSON)`: no setting
(`enable_seqscan = off`) forces its hand, so the test proves that the indexes are used at
a realistic size, not merely that they exist. The log is large enough for a sequential
scan to lose; for a common value the planner walks the primary key in position order and
stops at the page's end, for a rare one it takes the filter's own index.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bench.biglog import build_log
from service.audit.events import EventFilter, Order, explain
from service.storage.backend import backend_for
from service.storage.dialects import is_postgres
from tests.support.backends import copied_to_postgres
from tests.support.harness import cli


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "log.db"
    build_log(path, 20_000, check=True)
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def big(request: pytest.FixtureRequest, big_file: Path) -> Path | str:
    """The generated log: the file, then a copy of it in a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return big_file
    return copied_to_postgres(request.getfixturevalue("postgres"), big_file)


@pytest.fixture
def db(big: Path | str) -> Iterator[Any]:
    with closing(backend_for(big).connect_sync()) as conn:
        yield conn


FILTERS = [
    EventFilter(),
    EventFilter(ticket="100042"),
    EventFilter(action="REOPEN"),
    EventFilter(outcome="rejected"),
    EventFilter(actor="psa-ledger"),
    EventFilter(action="UPDATE", outcome="rejected"),
    EventFilter(ticket="100042", action="UPDATE", since="2024-01-01T00:00:05Z"),
]
#: Values the generated log never holds, each with the index a selective filter must take.
RARE = [
    (EventFilter(ticket="none"), "events_by_ticket_position"),
    (EventFilter(action="callback_dead_lettered"), "events_by_action"),
    (EventFilter(outcome="mismatch"), "events_by_outcome"),
    (EventFilter(actor="nobody"), "events_by_actor"),
]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("where", FILTERS, ids=lambda f: repr(f)[12:-1] or "none")
def test_every_filter_walks_an_index(db: Any, where: EventFilter, order: Order) -> None:
    plan = explain(db, where, order)
    if is_postgres(db):
        _assert_postgres_walks_an_index(plan)
    else:
        assert all(step.startswith("SEARCH events USING") for step in plan), plan
        assert not any("TEMP B-TREE" in step for step in plan), plan


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize(("where", "index"), RARE, ids=lambda f: repr(f)[12:-1])
def test_a_selective_filter_takes_its_own_index(
    db: Any, where: EventFilter, index: str, order: Order
) -> None:
    plan = explain(db, where, order)
    if is_postgres(db):
        _assert_postgres_walks_an_index(plan)
        assert f"Index Scan using {index} on events" in plan, plan
    else:
        assert any(f"USING INDEX {index}" in step for step in plan), plan


def test_the_generated_log_verifies_and_pages(big: Path | str) -> None:
    done = cli("verify", "--every", "5000", db=big)
    assert "OK: 20000 events, 2000 tickets" in done.stdout
    assert "verify: 20000/20000 events (100%)" in done.stderr


def _assert_postgres_walks_an_index(plan: list[str]) -> None:
    """No sequential scan, no sort: an index read in position order, cut by the LIMIT."""
    assert plan[0] == "Limit", plan
    assert all(node.startswith(("Index Scan", "Index Only Scan")) for node in plan[1:]), plan

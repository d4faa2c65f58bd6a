"""Every ```sql block of docs/audit.md runs as written and gives the right answer, each on
its backend: the SQLite cookbook on a file, its PostgreSQL dialect on a database.

The log is written through the real Ledger with a clock the test sets, a month of history
ending now, so "last week" and "mean time to resolve" have answers known in advance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from service.storage.backend import backend_for
from service.storage.events import iter_after as iter_events
from statemachine.events import Event
from tests.support.cookbook import blocks, for_log
from tests.support.harness import write_log
from tests.support.live import read

H, D = timedelta(hours=1), timedelta(days=1)


def create(ticket: str, site: str) -> dict[str, Any]:
    return {
        "action": "CREATE", "ncentralTicketId": ticket, "title": f"Disk {ticket}",
        "details": "C: full", "customTags": {"site": site},
    }  # fmt: skip


def act(action: str, ticket: str, **extra: str) -> dict[str, Any]:
    return {"action": action, "ncentralTicketId": ticket, **extra}


# Offsets from 30 days ago.
STEPS: list[tuple[timedelta, dict[str, Any] | bytes]] = sorted(
    [
        (0 * D, create("100", "Leeds")),
        (2 * H, act("RESOLVE", "100")),
        (1 * D, act("REOPEN", "100")),
        (2 * D, act("RESOLVE", "100", details="again")),
        (3 * D, act("REOPEN", "100", details="again")),
        (4 * D, act("RESOLVE", "100", details="third")),
        (10 * D, create("300", "Leeds")),
        (10 * D + 1 * H, act("RESOLVE", "300")),
        (10 * D + 2 * H, act("UPDATE", "300", details="late")),
        (10 * D + 3 * H, act("RESOLVE", "300")),
        (25 * D, create("200", "York")),
        (25 * D + 1 * H, act("UPDATE", "200", details="note")),
        (25 * D + 2 * H, act("UPDATE", "200", details="note")),
        (25 * D + 3 * H, act("REOPEN", "200")),
        (25 * D + 6 * H, act("RESOLVE", "200")),
        (26 * D, act("REOPEN", "100", details="fourth")),
        (27 * D, b"{oops"),
        (28 * D, act("UPDATE", "999")),
    ],
    key=lambda step: step[0],
)


@pytest.fixture(scope="module")
def log(module_db: Path | str) -> tuple[Path | str, list[Event]]:
    write_log(module_db, STEPS)
    with closing(backend_for(module_db).connect_sync()) as db:
        return module_db, list(iter_events(db))


def created(events: list[Event], ticket: str) -> Event:
    return next(e for e in events if e.ticket_id == ticket and e.action == "CREATE")


def expected_answers(events: list[Event]) -> dict[str, Callable[[], list[tuple[Any, ...]]]]:
    rejected = [e for e in events if e.outcome == "rejected"]
    last_100 = [e for e in events if e.ticket_id == "100"][-1]
    invalid = next(e for e in events if e.outcome == "invalid")
    return {
        "ticket-history": lambda: [
            (e.position, e.recorded_at, e.action, e.outcome, e.state_before, e.state_after)
            for e in events
            if e.ticket_id == "100"
        ],
        "current-state": lambda: [("PSA-1", "reopened", "Disk 100", last_100.recorded_at)],
        # The UPDATE refused 20 days ago is older than a week; the REOPEN 5 days ago is not.
        "rejected-last-week": lambda: [
            (
                rejected[1].position,
                rejected[1].recorded_at,
                "200",
                "REOPEN",
                "open",
                "REOPEN is not allowed on a ticket that is open",
            )
        ],
        "reopened-more-than-twice": lambda: [("100", 3)],
        # 2 h for 100, 1 h for 300, 6 h for 200.
        "mean-hours-to-resolve": lambda: [(3.0,)],
        "retries": lambda: [("200", "UPDATE", 1), ("300", "RESOLVE", 1)],
        "unreadable-requests": lambda: [(invalid.position, invalid.recorded_at, 400, "{oops")],
        "outcomes-per-day": lambda: sorted(
            (day, outcome, n)
            for (day, outcome), n in Counter(
                (e.recorded_at[:10], e.outcome) for e in events
            ).items()
        ),
        "tickets-by-state": lambda: [("closed", 2), ("reopened", 1)],
        "tickets-with-tag": lambda: [
            ("PSA-1", "reopened", "Disk 100"),
            (f"PSA-{created(events, '300').position}", "closed", "Disk 300"),
        ],
        # This log is written in sync mode; tests/service/callbacks/test_callbacks_legacy.py
        # runs the same query against a dead letter.
        "callbacks-owed": list,
        "chain-links": list,
        "chain-gaps": list,
    }


def test_every_cookbook_query_has_a_checked_answer(log: tuple[Path | str, list[Event]]) -> None:
    db, events = log
    assert set(for_log(db)) == set(expected_answers(events))


@pytest.mark.parametrize("name", sorted(blocks()))
def test_cookbook_query_answers_right(log: tuple[Path | str, list[Event]], name: str) -> None:
    db, events = log
    rows = [tuple(row.values()) for row in read(db, for_log(db)[name])]
    assert rows == expected_answers(events)[name]()

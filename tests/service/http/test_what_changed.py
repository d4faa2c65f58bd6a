"""The review page's *What changed* when a page of the window's tickets holds no change.

A window may touch many tickets that end it as they began it (reopened and resolved
again, refused): a page of them shows no row, and must not say that nothing changed
while the next page holds the tickets that did.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.http.reviewing import TICKETS_PER_PAGE
from service.timestamps import format_utc
from tests.service.http.test_console import act
from tests.support.harness import write_log
from tests.support.live import OPERATOR, Service

H = timedelta(hours=1)
#: More tickets left as they were than a page holds, all before the one that changed.
UNCHANGED = [str(100 + n) for n in range(TICKETS_PER_PAGE + 1)]
CHANGED = "900"


@pytest.fixture(scope="module")
def review(module_db: Path | str) -> Iterator[tuple[httpx.Client, str]]:
    steps: list[tuple[timedelta, dict[str, Any] | bytes]] = [
        (H, act("CREATE", ticket, title=f"Disk full on {ticket}", details="Device: web"))
        for ticket in UNCHANGED
    ]
    # In the window: each of them reopened (refused: it is open), then the new one.
    steps += [(3 * H, act("REOPEN", ticket)) for ticket in UNCHANGED]
    steps.append((4 * H, act("CREATE", CHANGED, title="Backup late", details="Device: nas")))
    write_log(module_db, steps)
    service = Service(module_db, log_level="warning").start()
    client = httpx.Client(base_url=service.url, auth=OPERATOR, timeout=30)
    try:
        first = client.get("/api/events", params={"limit": 1}).json()["events"][0]
        start = datetime.fromisoformat(first["recorded_at"].replace("Z", "+00:00")) - H
        window = _window(start + 2 * H, start + 5 * H)
        yield client, window
    finally:
        client.close()
        service.stop()


def test_a_page_of_unchanged_tickets_says_so_and_leads_on(
    review: tuple[httpx.Client, str],
) -> None:
    client, window = review
    first = client.get(f"/review?{window}").text
    assert "data-ticket=" not in _changes(first)
    assert "No ticket changed" not in first
    assert f"None of this page's {TICKETS_PER_PAGE} tickets changed" in first
    link = re.search(r'aria-label="More changes"><a href="([^"#]*)', first)
    assert link is not None
    second = client.get(link.group(1).replace("&amp;", "&")).text
    assert re.findall(r'data-ticket="([^"]+)" data-field="state"', second) == [CHANGED]


def test_a_last_page_without_changes_says_none_changed(review: tuple[httpx.Client, str]) -> None:
    client, window = review
    page = client.get(f"/review?{window}&changes={CHANGED}").text
    assert "No ticket changed after this one." in page
    assert 'aria-label="More changes"' not in page


def _window(since: datetime, until: datetime) -> str:
    """The query of a review window."""
    return f"from={format_utc(since)}&to={format_utc(until)}"


def _changes(page: str) -> str:
    """The *What changed* table of a review page."""
    return page.split('id="changes"', 1)[1].split("</table>", 1)[0]

"""The ticket page as a technician sees it, in a real (headless) Chromium."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.support.browser import chromium, ensure_chromium
from tests.support.harness import OPERATOR, Server

HOSTILE = "<script>alert(1)</script>"
#: A long note N-central might send: far more than a page should show of one event.
LONG = "Device: web-02\nProblem: " + "disk 98% full; " * 7_000
UPDATES = 118  # with the CREATE and its identity_delivered: 120 events, 3 pages of 50


@pytest.fixture(scope="module")
def page_url(server: Server) -> str:
    ensure_chromium()
    created = server.send(
        action="CREATE",
        ncentralTicketId="4242",
        title=HOSTILE,
        details="Device: web-01\nProblem: <b>disk</b> 98% full",
        customTags={"site": "Leeds & Co", "priority": "high"},
    )
    server.send(action="REOPEN", ncentralTicketId="4242")
    server.send(action="RESOLVE", ncentralTicketId="4242")
    server.send(action="RESOLVE", ncentralTicketId="4242")
    return str(created.json()["ticketUrl"])


@pytest.fixture(scope="module")
def long_ticket_url(server: Server) -> str:
    """A ticket whose every event carries ~100 kB of details."""
    created = server.send(action="CREATE", ncentralTicketId="777", title="T" * 5_000, details=LONG)
    for number in range(UPDATES):
        update = server.send(action="UPDATE", ncentralTicketId="777", details=f"{number} {LONG}")
        assert update.status_code == 200
    return str(created.json()["ticketUrl"])


def operator_header() -> str:
    return "Basic " + base64.b64encode(":".join(OPERATOR).encode()).decode()


def text(driver: Any, element_id: str) -> str:
    return str(driver.find_element("id", element_id).text)


def test_a_technician_reads_the_ticket_and_its_timeline(page_url: str) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with chromium(operator_header()) as driver:
        driver.get(page_url)  # type: ignore[attr-defined]
        assert text(driver, "title") == HOSTILE
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # type: ignore[attr-defined]  # noqa: B018
        assert text(driver, "state") == "closed"
        assert "Problem: <b>disk</b> 98% full" in text(driver, "details")
        tags = text(driver, "tags")
        assert "Leeds & Co" in tags and "priority" in tags
        assert text(driver, "pages") == "Page 1 of 1"
        lines = timeline_lines(driver)
        assert lines == [
            "CREATE\naccepted\nnew → pending",
            "identity_delivered\nrecorded\npending → open",
            "REOPEN\nrejected\nopen → open",
            "RESOLVE\naccepted\nopen → closed",
            "RESOLVE\nduplicate\nclosed → closed",
        ]


def test_the_page_fits_a_phone(page_url: str) -> None:
    with chromium(operator_header(), width=375, height=740) as driver:
        driver.get(page_url)  # type: ignore[attr-defined]
        overflow = driver.execute_script(  # type: ignore[attr-defined]
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        assert text(driver, "title") == HOSTILE


def test_a_long_timeline_comes_a_page_at_a_time(long_ticket_url: str) -> None:
    with chromium(operator_header()) as driver:
        driver.get(long_ticket_url)  # type: ignore[attr-defined]
        assert text(driver, "pages") == "Page 1 of 3 · later → · latest"
        first = timeline_lines(driver)
        assert len(first) == 50
        assert first[:2] == [
            "CREATE\naccepted\nnew → pending",
            "identity_delivered\nrecorded\npending → open",
        ]
        # Before paging, this page rendered all 120 events whole: over 12 MB.
        assert len(driver.page_source) < 300_000  # type: ignore[attr-defined]
        click(driver, "later →")
        assert text(driver, "pages") == "Page 2 of 3 · first · ← earlier · later → · latest"
        assert len(timeline_lines(driver)) == 50
        click(driver, "latest")
        assert text(driver, "pages") == "Page 3 of 3 · first · ← earlier"
        assert timeline_lines(driver) == ["UPDATE\naccepted\nopen → open"] * 20
        click(driver, "← earlier")
        assert text(driver, "pages").startswith("Page 2 of 3")


def test_long_values_are_shortened_with_a_link_to_the_whole_event(long_ticket_url: str) -> None:
    with chromium(operator_header()) as driver:
        driver.get(long_ticket_url + "?page=3")  # type: ignore[attr-defined]
        assert len(text(driver, "title")) < 400
        assert len(text(driver, "details")) < 2_500
        assert "the whole ticket" in text(driver, "details-cut")
        last = driver.find_elements("css selector", "#timeline .event")[-1]  # type: ignore[attr-defined]
        last.find_element("tag name", "summary").click()
        shown = last.find_element("tag name", "pre").text
        assert f"{UPDATES - 1} Device: web-02" in shown and len(shown) < 3_500
        last.find_element("partial link text", "the whole event").click()
        event = json.loads(driver.find_element("tag name", "pre").text)  # type: ignore[attr-defined]
    assert event["payload"]["details"] == f"{UPDATES - 1} {LONG}"
    assert (event["action"], event["ticket_id"]) == ("UPDATE", "777")


@pytest.mark.parametrize(
    ("page", "status"), [("0", 400), ("abc", 400), ("\u0662", 400), ("9" * 30, 400), ("4", 404)]
)
def test_a_page_that_is_not_there_is_refused(
    server: Server, long_ticket_url: str, page: str, status: int
) -> None:
    path = long_ticket_url.removeprefix(server.url)
    response = server.operator.get(path, params={"page": page})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    if status == 400:
        assert response.json()["parameter"] == "page"


def test_one_event_is_whole_at_its_position(server: Server, long_ticket_url: str) -> None:
    response = server.operator.get("/api/events/1")
    assert response.status_code == 200
    assert response.json()["position"] == 1
    assert server.operator.get("/api/events/999999").status_code == 404
    for bad in ("\u0661", "abc", "9" * 30, "-1"):
        refused = server.operator.get(f"/api/events/{bad}")
        assert refused.status_code == 400, bad
        assert refused.json()["parameter"] == "position"
    assert server.operator.get("/api/events/1", params={"x": "1"}).json()["parameter"] == "x"
    assert server.ncentral.get("/api/events/1").status_code == 401


def timeline_lines(driver: Any) -> list[str]:
    entries = driver.find_elements("css selector", "#timeline .event")
    return [e.find_element("css selector", ".line").text for e in entries]


def click(driver: Any, link_text: str) -> None:
    driver.find_element("link text", link_text).click()

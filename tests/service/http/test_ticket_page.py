"""The ticket page as a technician sees it, in a real (headless) Chromium."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.support.browser import chromium, ensure_chromium
from tests.support.harness import OPERATOR, Server

HOSTILE = "<script>alert(1)</script>"


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
        entries = driver.find_elements("css selector", "#timeline .event")  # type: ignore[attr-defined]
        lines = [e.find_element("css selector", ".line").text for e in entries]
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

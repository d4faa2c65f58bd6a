"""The operator console in a real (headless) Chromium, against a real server and log.

The log holds a day of a made-up incident written through the real write path with a
clock the test sets (30 days ago), plus a ticket created live in `async` mode whose
callbacks to an N-central that does not answer are dead-lettered. Titles and details
are hostile throughout. Every test runs on both backends (`module_db`): one server and
one seeded log per backend, on a SQLite file, then on a PostgreSQL database.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import pytest

from service.timestamps import format_utc
from tests.service.http.test_ticket_page import operator_header
from tests.support.browser import chromium, ensure_chromium
from tests.support.harness import PSA_LEDGER, clean_environment, write_log
from tests.support.live import NCENTRAL, OPERATOR, Service, free_port, wait_for

pytestmark = pytest.mark.slow

TITLE = "<script>alert(1)</script>"
DETAILS = '"><img src=x onerror=alert(1)>'
H, M = timedelta(hours=1), timedelta(minutes=1)
#: The incident window, as offsets from the log's start.
WINDOW = (6 * H, 24 * H)
#: Screenshots go here when set (docs/ holds the one the README shows).
SHOTS = os.environ.get("PSA_LEDGER_SCREENSHOTS")


def act(action: str, ticket: str, **extra: Any) -> dict[str, Any]:
    return {"action": action, "ncentralTicketId": ticket, **extra}


def incident() -> list[tuple[timedelta, dict[str, Any] | bytes]]:
    """A quiet morning, a burst of disk alerts at 08:00, resolves, a few come back."""
    steps: list[tuple[timedelta, dict[str, Any] | bytes]] = [
        (30 * M, act("CREATE", "4242", title=TITLE, details=DETAILS, customTags={"site": DETAILS})),
        (2 * H, act("UPDATE", "4242", details=DETAILS + " again")),
        (5 * H, act("CREATE", "50", title="Backup job late", details="Device: nas-01")),
    ]
    for n in range(30):
        ticket = str(100 + n)
        site = ("Leeds", "York", "Hull")[n % 3]
        created = 8 * H + n * 3 * M
        steps.append(
            (created, act("CREATE", ticket, title=f"Disk C: 9{n % 10}% full on web-{n:02}",
                          details=f"Device: web-{n:02}\nProblem: disk", customTags={"site": site}))
        )  # fmt: skip
        if n % 4 == 0:
            steps.append((created + 20 * M, act("REOPEN", ticket)))  # refused: it is open
        if n % 3 != 2:
            steps.append((10 * H + n * 5 * M, act("RESOLVE", ticket, details="freed space")))
            steps.append((10 * H + n * 5 * M + M, act("RESOLVE", ticket, details="freed space")))
        if n % 6 == 0:
            steps.append((15 * H + n * M, act("REOPEN", ticket, details="full again")))
    steps += [
        (11 * H, act("UPDATE", "999", details="who?")),
        (12 * H, b"{oops"),
        (13 * H, act("RESOLVE", "4242")),
        (16 * H, act("REOPEN", "4242", details=DETAILS)),
        (20 * H, act("UPDATE", "50", details="still late")),
    ]
    return sorted(steps, key=lambda step: step[0])


class Console:
    def __init__(self, service: Service, since: str, until: str) -> None:
        self.service = service
        self.url = service.url
        self.since, self.until = since, until
        self.operator = httpx.Client(base_url=service.url, auth=OPERATOR, timeout=30)

    def review_path(self) -> str:
        return f"/review?from={self.since}&to={self.until}"


@pytest.fixture(scope="module")
def console(module_db: Path | str) -> Iterator[Console]:
    ensure_chromium()
    db = module_db
    write_log(db, incident())
    nowhere = f"http://127.0.0.1:{free_port()}"
    service = Service(
        db,
        log_level="warning",
        create_mode="async",
        ncentral_url=nowhere,
        ncentral_username="nc",
        ncentral_password="nc-password-for-tests",
        callback_schedule="0.05",
    )
    service.start()
    service.ticket("CREATE", "7777", title=TITLE, details=DETAILS)
    client = httpx.Client(base_url=service.url, auth=OPERATOR, timeout=30)
    wait_for(
        lambda: client.get("/api/callbacks", params={"status": "dead"}).json()["callbacks"],
        what="the callback to a silent N-central to be dead-lettered",
    )
    first = client.get("/api/events", params={"limit": 1}).json()["events"][0]["recorded_at"]
    start = datetime.fromisoformat(first.replace("Z", "+00:00")) - 30 * M
    window = Console(service, format_utc(start + WINDOW[0]), format_utc(start + WINDOW[1]))
    yield window
    client.close()
    window.operator.close()
    service.stop()


def test_every_link_and_form_answers_to_a_depth_of_three(console: Console) -> None:
    """Start at /, follow every link and submit every form on every page, three deep."""
    seen: set[str] = set()
    queue = deque([(console.url + "/", 0)])
    statuses: dict[str, int] = {}
    posts = 0
    with chromium(operator_header()) as driver:
        while queue:
            url, depth = queue.popleft()
            if url in seen:
                continue
            seen.add(url)
            status = console.operator.get(url).status_code
            statuses[url] = status
            if depth >= 3 or not _is_page(console, url) or status != 200:
                continue
            driver.get(url)  # type: ignore[attr-defined]
            for href in _links(driver):
                target = urljoin(url, href).split("#")[0]
                if target.startswith(console.url):
                    queue.append((target, depth + 1))
            for target in _get_forms(driver, url):
                queue.append((target, depth + 1))
            posts += _press_post_buttons(driver, console, statuses)
    bad = {url: status for url, status in statuses.items() if status >= 400}
    assert not bad, bad
    # The crawl reached every kind of page, and pressed the retry buttons.
    paths = {urlsplit(url).path for url in statuses}
    assert {"/", "/review", "/callbacks", "/review/events.csv", "/review/events.jsonl"} <= paths
    assert any(path.startswith("/tickets/") for path in paths)
    assert posts >= 1
    assert len(statuses) > 50


def test_hostile_text_shows_as_text_on_every_page(console: Console) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    pages = {
        "/": [TITLE],
        "/?text=script": [TITLE],
        # "What changed" from the ticket after "3" on: 4242, hostile title and all.
        console.review_path() + "&changes=3": [TITLE],
        console.review_path() + "&ticket=4242": [TITLE, DETAILS],
        "/review": [TITLE, DETAILS],
        "/tickets/PSA-1": [TITLE, DETAILS],
        "/tickets/PSA-1?as_of=1": [TITLE, DETAILS],
        "/callbacks": [TITLE],
    }
    with chromium(operator_header()) as driver:
        for path, texts in pages.items():
            driver.get(console.url + path)  # type: ignore[attr-defined]
            with pytest.raises(NoAlertPresentException):
                driver.switch_to.alert.text  # type: ignore[attr-defined]  # noqa: B018
            shown = driver.find_element("tag name", "body").get_attribute("textContent")  # type: ignore[attr-defined]
            for text in texts:
                assert text in shown, (path, text)
            assert driver.find_elements("css selector", "img, script, iframe") == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "path", ["/", "review", "/tickets/PSA-1", "/callbacks", "/tickets/PSA-4?as_of=5"]
)
def test_no_page_overflows_a_phone(console: Console, path: str) -> None:
    url = console.url + (console.review_path() if path == "review" else path)
    with chromium(operator_header(), width=375, height=740) as driver:
        driver.get(url)  # type: ignore[attr-defined]
        overflow = driver.execute_script(  # type: ignore[attr-defined]
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, url
        assert driver.find_elements("tag name", "main"), url  # type: ignore[attr-defined]
        _shoot(driver, f"phone-{path.strip('/').replace('/', '-') or 'index'}")


@pytest.mark.parametrize("path", ["/", "review", "/tickets/PSA-1", "/callbacks"])
def test_pages_of_ascii_text_are_sent_as_ascii(console: Console, path: str) -> None:
    """The pages' own marks (`→`, `·`, `⚠`) are character references, so that a page of
    ASCII data is ASCII: a string of one byte a character, cheaper to join and encode."""
    answer = console.operator.get(console.review_path() if path == "review" else path)
    assert answer.status_code == 200
    assert answer.content.isascii(), {c for c in answer.text if not c.isascii()}
    shown = html.unescape(answer.text)
    assert " · " in shown
    if path in ("review", "/tickets/PSA-1"):
        assert re.search(r">(new|pending|open|closed|reopened) → (pending|open|closed)<", shown)


def test_the_review_charts_hold_the_apis_numbers(console: Console) -> None:
    with chromium(operator_header(), width=1280, height=2200) as driver:
        driver.get(console.url + console.review_path())  # type: ignore[attr-defined]
        assert len(driver.find_elements("css selector", "main svg")) == 2  # type: ignore[attr-defined]
        _shoot(driver, "review")
        bounds = driver.find_element("id", "actions-chart").get_attribute("data-bounds").split()  # type: ignore[attr-defined]
        periods = list(pairwise(bounds))
        series = {
            p.get_attribute("data-outcome"): (
                [int(n) for n in p.get_attribute("data-counts").split()],
                p.get_attribute("d").count("M"),
            )
            for p in driver.find_elements("css selector", "#actions-chart path.series")  # type: ignore[attr-defined]
        }
        dots = driver.find_element("css selector", "#open-chart path.dots")  # type: ignore[attr-defined]
        at, shown = dots.get_attribute("data-at").split(), dots.get_attribute("data-open").split()
        points = list(zip(at, map(int, shown), strict=True))
        drawn = dots.get_attribute("d").count("M")
    # Each outcome's bars are one path: a rectangle for each period it has events in;
    # the open count has a dot at the end of each period.
    for counts, rectangles in series.values():
        assert len(counts) == len(periods) and rectangles == sum(1 for n in counts if n)
    assert at == bounds[1:] and drawn == len(points)
    bars = [
        (start, end, {o: counts[i] for o, (counts, _) in series.items() if counts[i]})
        for i, (start, end) in enumerate(periods)
    ]
    assert len(bars) == len(points) > 10
    assert sum(sum(counts.values()) for _, _, counts in bars) > 80
    for index, (start, end, counts) in enumerate(bars):
        last = index == len(bars) - 1
        until = end if last else _just_before(end)
        events = _all_events(console, since=start, until=until)
        expected: dict[str, int] = {}
        for event in events:
            expected[event["outcome"]] = expected.get(event["outcome"], 0) + 1
        assert counts == expected, (start, end)
    for index, (at, shown) in enumerate(points):
        moment = at if index == len(points) - 1 else _just_before(at)
        assert shown == _open_tickets(console, moment), at


def test_what_changed_is_what_psa_ledger_diff_says(console: Console) -> None:
    """Every row of `psa-ledger diff` for the window (states, titles, details, tags), in
    its order, across the pages of "What changed", each page reached by its link."""
    import json

    shown: list[tuple[str, str, str, str]] = []
    pages = 0
    with chromium(operator_header()) as driver:
        driver.get(console.url + console.review_path())  # type: ignore[attr-defined]
        while True:
            pages += 1
            for row in driver.find_elements("css selector", "#changes tr[data-ticket]"):  # type: ignore[attr-defined]
                cells = [
                    c.get_attribute("textContent") for c in row.find_elements("tag name", "td")
                ]
                shown.append(
                    (row.get_attribute("data-ticket"), row.get_attribute("data-field"), *cells[2:4])
                )
            more = driver.find_elements("css selector", "nav[aria-label='More changes'] a")  # type: ignore[attr-defined]
            if not more:
                break
            _follow(driver, more[0])
    done = console.service.cli("diff", console.since, console.until, "--format", "json")
    diff = [
        (row["ticket_id"], row["field"], row["before"] or "did not exist", row["after"])
        for row in json.loads(done.stdout)
    ]
    assert shown == diff
    assert {field for _, field, _, _ in diff} == {"state", "title", "details", "custom_tags"}
    assert len(diff) > 60


def test_what_changed_is_paged(console: Console) -> None:
    """Fewer tickets a page than the window touched: the next page is the same window's,
    from the ticket after the last one shown, and repeats none."""
    import json

    first = console.operator.get(console.review_path()).text
    tickets = re.findall(r'data-ticket="([^"]+)" data-field="state"', first)
    link = re.search(r'aria-label="More changes"><a href="([^"#]*)', first)
    assert link is not None
    second = console.operator.get(link.group(1).replace("&amp;", "&")).text
    later = re.findall(r'data-ticket="([^"]+)" data-field="state"', second)
    done = console.service.cli("diff", console.since, console.until, "--format", "json")
    diff = sorted({row["ticket_id"] for row in json.loads(done.stdout)})
    assert tickets + later == diff[: len(tickets) + len(later)]
    assert later and len(tickets) == 25


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("narrowed", [{}, {"outcome": "rejected"}, {"ticket": "4242"}])
def test_the_downloads_are_the_exports_bytes(
    console: Console, fmt: str, narrowed: dict[str, str]
) -> None:
    params = {"from": console.since, "to": console.until, **narrowed}
    answer = console.operator.get(f"/review/events.{fmt}", params=params)
    assert answer.status_code == 200
    assert "attachment" in answer.headers["content-disposition"]
    flags = [f"--{k}={v}" for k, v in narrowed.items()]
    exported = subprocess.run(
        [PSA_LEDGER, "export", "--format", fmt, "--since", console.since,
         "--until", console.until, *flags, "--db", str(console.service.db)],
        capture_output=True, timeout=60, check=True,
        env=clean_environment(),
    )  # fmt: skip
    assert answer.content == exported.stdout
    assert answer.content.count(b"\n") > (1 if narrowed else 80)


def test_the_review_links_keep_the_filters_as_sent(console: Console) -> None:
    """Each process hashes names afresh: walking a set of them reordered the links."""
    filters = [("outcome", "accepted"), ("ticket", "4242"), ("actor", "x"), ("action", "UPDATE")]
    sent = [("to", console.until), ("from", console.since), *filters]
    page = console.operator.get("/review", params=sent).text
    narrowed = urlencode([("from", console.since), ("to", console.until), *filters])
    assert f'href="/review/events.csv?{narrowed.replace("&", "&amp;")}"' in page


def test_downloads_are_paged_yet_whole(console: Console) -> None:
    """More events than one page of the API: the stream goes on until the window ends."""
    everything = console.operator.get("/review/events.jsonl", params={"from": "2000-01-01"})
    positions = [
        int(line.split(b",")[0].split(b":")[1]) for line in everything.content.splitlines()
    ]
    assert positions == list(range(1, len(positions) + 1))


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/review"), ("GET", "/callbacks"), ("GET", "/tickets/PSA-1"),
     ("GET", "/review/events.csv"), ("GET", "/review/events.jsonl"),
     ("POST", "/callbacks/7777/retry"), ("POST", "/callbacks/retry-dead")],
)  # fmt: skip
def test_the_ncentral_credential_reaches_no_console_page(
    console: Console, method: str, path: str
) -> None:
    headers = {"Origin": console.url, "Sec-Fetch-Site": "same-origin"}
    for auth in (NCENTRAL, None):
        answer = httpx.request(method, console.url + path, auth=auth, headers=headers)
        assert answer.status_code == 401, (path, auth)
        assert TITLE not in answer.text


def test_the_retry_button_works_from_the_page_and_only_from_ours(console: Console) -> None:
    def requested() -> int:
        params = {"action": "callback_retry_requested", "ticket": "7777"}
        return len(console.operator.get("/api/events", params=params).json()["events"])

    before = requested()
    with chromium(operator_header()) as driver:
        driver.get(console.url + "/callbacks")  # type: ignore[attr-defined]
        row = driver.find_element("id", "callback-7777")  # type: ignore[attr-defined]
        row.find_element("tag name", "button").click()
        landed = wait_for(lambda: "retried=" in driver.current_url and driver.current_url)  # type: ignore[attr-defined]
        assert landed.startswith(console.url + "/callbacks?retried=7777")
        assert "Retry requested: 7777" in driver.find_element("id", "retried").text  # type: ignore[attr-defined]
    assert requested() == before + 1
    # Another site's form, with the operator's cached credentials: refused, nothing written.
    forged = httpx.post(
        console.url + "/callbacks/7777/retry",
        auth=OPERATOR,
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        data={},
    )
    assert forged.status_code == 403
    blind = httpx.post(console.url + "/callbacks/7777/retry", auth=OPERATOR, data={})
    assert blind.status_code == 403
    assert requested() == before + 1


def test_a_ticket_steps_through_its_past(console: Console) -> None:
    with chromium(operator_header()) as driver:
        driver.get(console.url + "/tickets/PSA-1?as_of=1")  # type: ignore[attr-defined]
        assert driver.find_element("id", "state").text == "pending"  # type: ignore[attr-defined]
        states = []
        for _ in range(8):
            states.append(driver.find_element("id", "state").text)  # type: ignore[attr-defined]
            later = driver.find_elements("css selector", "#steps a[rel=next]")  # type: ignore[attr-defined]
            if not later:
                break
            _follow(driver, later[0])
        assert states[:3] == ["pending", "open", "open"]
        assert states[-1] == "reopened"
        _follow(driver, driver.find_element("css selector", "#steps a[rel=prev]"))  # type: ignore[attr-defined]
        assert driver.find_element("id", "state").text == "closed"  # type: ignore[attr-defined]
        lines = driver.find_elements("css selector", "#timeline .event")  # type: ignore[attr-defined]
        assert len(lines) == len(states) - 1


@pytest.mark.parametrize(
    ("since", "until"),
    [("0001-01-01", "9999-12-31T23:59:59.999999"), ("9999-12-31T23:59:59", "9999-12-31T23:59:59.5"),
     ("2024-01-01", "2024-01-01")],
)  # fmt: skip
def test_windows_at_the_ends_of_time_are_pages(console: Console, since: str, until: str) -> None:
    answer = console.operator.get("/review", params={"from": since, "to": until})
    assert answer.status_code == 200
    assert answer.text.count("<svg") == 2
    backwards = console.operator.get("/review", params={"from": until, "to": since})
    assert backwards.status_code == (200 if since == until else 400)


def test_the_list_filters_and_flags_callbacks(console: Console) -> None:
    page = console.operator.get("/", params={"tag": "site:York", "state": "closed"}).text
    assert "web-01" in page and "web-00" not in page
    flagged = console.operator.get("/", params={"ncentral": "7777"}).text
    assert "callback dead" in flagged
    assert console.operator.get("/", params={"text": "backup JOB"}).text.count("/tickets/PSA-") == 1
    # The counts are carried along the log between pages: after new events, still true.
    console.service.ticket("CREATE", "8888")
    console.service.ticket("RESOLVE", "8888")
    shown = dict(
        (state, int(n))
        for n, state in re.findall(
            r"<strong>(\d+)</strong>(\w+)</a>", console.operator.get("/").text
        )
    )
    for state in ("pending", "open", "closed", "reopened"):
        listed = console.operator.get("/api/tickets", params={"state": state, "limit": 1000})
        assert shown[state] == len(listed.json()["tickets"]), state
    refused = console.operator.get("/", params={"tag": "York"})
    assert refused.status_code == 400 and refused.json()["parameter"] == "tag"


def _follow(driver: Any, link: Any) -> None:
    """Click a link and wait for the page it names (a click does not wait on a busy machine)."""
    target = link.get_attribute("href")
    link.click()
    wait_for(lambda: driver.current_url == target, what=f"the browser at {target}")


def _is_page(console: Console, url: str) -> bool:
    path = urlsplit(url).path
    return not path.startswith(("/api/", "/review/events."))


def _links(driver: Any) -> list[str]:
    return [a.get_attribute("href") for a in driver.find_elements("css selector", "a[href]")]


def _get_forms(driver: Any, url: str) -> list[str]:
    """Each GET form as submitted with what it shows (no script: built from its fields)."""
    targets = []
    for form in driver.find_elements("css selector", "form[method=get]"):
        query = driver.execute_script(
            "return new URLSearchParams(new FormData(arguments[0])).toString()", form
        )
        targets.append(urljoin(url, form.get_attribute("action")) + "?" + query)
    return targets


def _press_post_buttons(driver: Any, console: Console, statuses: dict[str, int]) -> int:
    """Press the first button of each POST form on the page; where it lands must answer."""
    pressed = 0
    count = len(driver.find_elements("css selector", "form[method=post]"))
    page = driver.current_url
    for index in range(count):
        forms = driver.find_elements("css selector", "form[method=post]")
        if index >= len(forms):
            break
        forms[index].find_element("tag name", "button").click()
        landed = wait_for(lambda: driver.current_url != page and driver.current_url)
        statuses[landed] = console.operator.get(landed).status_code
        assert driver.find_elements("tag name", "main"), landed  # a page, not a problem
        pressed += 1
        driver.get(page)
    return pressed


def _just_before(iso: str) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return format_utc(moment - timedelta(microseconds=1))


def _all_events(console: Console, **params: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": "1000"} | ({"cursor": cursor} if cursor else {})
        page = console.operator.get("/api/events", params=query).json()
        events += page["events"]
        cursor = page["next"]
        if cursor is None:
            return events


def _open_tickets(console: Console, moment: str) -> int:
    total = 0
    for state in ("pending", "open", "reopened"):
        params = {"as_of": moment, "state": state, "limit": "1000"}
        total += len(console.operator.get("/api/tickets", params=params).json()["tickets"])
    return total


def _shoot(driver: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"console-{name}.png"))


#: For every element that holds text: its colour, the first opaque background behind it,
#: and whether the text is large (WCAG: 18.66 px bold or 24 px).
_COLOURS = """
const out = [];
for (const el of document.querySelectorAll('body *')) {
  if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  const style = getComputedStyle(el);
  if (style.display === 'none' || style.visibility === 'hidden') continue;
  let bg = 'rgba(0, 0, 0, 0)', node = el;
  while (node && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) {
    bg = getComputedStyle(node).backgroundColor; node = node.parentElement;
  }
  if (bg === 'rgba(0, 0, 0, 0)') bg = 'rgb(255, 255, 255)';  // the canvas: white
  const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
  out.push([el.tagName, style.color, bg, size >= 24 || (bold && size >= 18.66)]);
}
return out;
"""


def _luminance(rgb: str) -> float:
    parts = [float(p) for p in rgb[rgb.index("(") + 1 : -1].split(",")[:3]]
    linear = [c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4
              for c in parts]  # fmt: skip
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize("path", ["/", "review", "/tickets/PSA-1", "/callbacks"])
def test_text_contrast_passes_wcag_aa(console: Console, path: str) -> None:
    url = console.url + (console.review_path() if path == "review" else path)
    with chromium(operator_header()) as driver:
        driver.get(url)  # type: ignore[attr-defined]
        found = driver.execute_script(_COLOURS)  # type: ignore[attr-defined]
    assert len(found) > 20
    for tag, colour, background, large in found:
        light, dark = sorted((_luminance(colour), _luminance(background)), reverse=True)
        ratio = (light + 0.05) / (dark + 0.05)
        assert ratio >= (3 if large else 4.5), (tag, colour, background, ratio)


def test_the_keyboard_alone_reaches_everything(console: Console) -> None:
    """Tab from the top: skip link first, then navigation, the filters, every ticket link."""
    from selenium.webdriver.common.keys import Keys

    with chromium(operator_header()) as driver:
        driver.get(console.url + "/?state=closed")  # type: ignore[attr-defined]
        driver.find_element("tag name", "body").send_keys(Keys.TAB)  # type: ignore[attr-defined]
        reached = []
        for _ in range(60):
            active = driver.switch_to.active_element  # type: ignore[attr-defined]
            name = active.get_attribute("href") or active.get_attribute("name") or active.text
            reached.append((active.tag_name, name))
            active.send_keys(Keys.TAB)
        names = [name for _, name in reached]
        assert reached[0][1].endswith("#content")
        assert {"state", "tag", "ncentral", "text"} <= set(names)
        assert any(name and name.endswith("/review") for name in names)
        assert any(name and "/tickets/PSA-" in name for name in names)
        ticket = next(n for n in names if n and "/tickets/PSA-" in n)
        link = driver.find_element("css selector", f'a[href="{urlsplit(ticket).path}"]')  # type: ignore[attr-defined]
        link.send_keys(Keys.ENTER)
        wait_for(lambda: driver.current_url == ticket, what="the ticket page")  # type: ignore[attr-defined]
        assert driver.find_element("id", "state").text == "closed"  # type: ignore[attr-defined]


def test_the_review_prints_as_a_report(console: Console) -> None:
    """Printed: no navigation, forms or buttons; the header's facts, charts and tables stay."""
    import base64

    with chromium(operator_header()) as driver:
        driver.get(console.url + console.review_path())  # type: ignore[attr-defined]
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})  # type: ignore[attr-defined]
        shown = driver.execute_script(  # type: ignore[attr-defined]
            "return [...arguments[0]].map(s => document.querySelector(s))"
            ".map(e => getComputedStyle(e).display !== 'none')",
            ["header nav", "form", "#downloads", "#facts", "#actions-chart", "#changes"],
        )
        pdf = driver.execute_cdp_cmd("Page.printToPDF", {"printBackground": False})  # type: ignore[attr-defined]
    assert shown == [False, False, False, True, True, True]
    document = base64.b64decode(pdf["data"])
    assert document.startswith(b"%PDF") and len(document) > 20_000

"""Another site cannot make an operator's browser retry callbacks; the shell and curl can.

A browser resends cached Basic credentials with any request to our origin, so each refused
request below carries the operator's valid credentials, as such a browser would.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import OPERATOR, Log, Service, wait_for
from tests.support.ncentral_fake import FakeNcentral, Reply

pytestmark = pytest.mark.slow

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_TICKETS = itertools.count(9001)


@pytest.fixture(scope="module")
def service(fake: FakeNcentral, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(
        tmp_path_factory.mktemp("crosssite") / "ledger.db",
        create_mode="async",
        ncentral_url=fake.url,
        ncentral_username=fake.username,
        ncentral_password=fake.password,
        public_url="https://psa.example.net",
    ).start()
    yield service
    service.stop()


@pytest.fixture
def dead(service: Service, fake: FakeNcentral) -> str:
    """A ticket whose callback N-central refused for good (400): dead-lettered."""
    ticket = str(next(_TICKETS))
    fake.script(ticket, Reply(400))
    service.ticket("CREATE", ticket)
    wait_for(lambda: Log(service.db).callback(ticket)["status"] == "dead", what="a dead letter")
    return ticket


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(FORM, id="a form, no Origin"),
        pytest.param({**FORM, "Origin": "https://evil.example"}, id="a form from another site"),
        pytest.param({"Content-Type": "text/plain"}, id="a no-cors fetch"),
        pytest.param(
            {"Content-Type": "application/json", "Origin": "https://evil.example"},
            id="JSON, but from another origin",
        ),
        pytest.param(
            {**FORM, "Origin": "https://psa.example.net", "Sec-Fetch-Site": "cross-site"},
            id="the browser says cross-site",
        ),
        pytest.param({**FORM, "Origin": "null"}, id="an opaque origin"),
    ],
)
@pytest.mark.parametrize("path", ["/api/callbacks/dead/retry", "/api/callbacks/{ticket}/retry"])
def test_a_request_another_site_could_send_is_refused_and_changes_nothing(
    service: Service, dead: str, path: str, headers: dict[str, str]
) -> None:
    before = Log(service.db).actions(dead)

    refused = httpx.post(
        service.url + path.format(ticket=dead), auth=OPERATOR, headers=headers, content=b"a=1"
    )

    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "application/json" in refused.json()["detail"]
    assert Log(service.db).callback(dead)["status"] == "dead"
    assert Log(service.db).actions(dead) == before


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Content-Type": "application/json"}, id="curl --json, a script"),
        pytest.param({**FORM, "Origin": "https://psa.example.net"}, id="our own public origin"),
        pytest.param({**FORM, "Sec-Fetch-Site": "same-origin"}, id="the browser says same-origin"),
    ],
)
def test_the_operator_own_tools_may_retry(
    service: Service, dead: str, headers: dict[str, str]
) -> None:
    retried = httpx.post(
        f"{service.url}/api/callbacks/{dead}/retry", auth=OPERATOR, headers=headers, content=b"{}"
    )

    assert retried.status_code == 202, retried.text
    wait_for(lambda: Log(service.db).state(dead) == "open", what="delivery after the retry")
    assert "callback_retry_requested" in Log(service.db).actions(dead)


def test_same_host_origin_counts_as_ours_behind_a_proxy_that_keeps_host(
    service: Service, dead: str
) -> None:
    """A browser on http://127.0.0.1:PORT (no proxy) sends that as Origin and Host."""
    retried = httpx.post(
        f"{service.url}/api/callbacks/dead/retry",
        auth=OPERATOR,
        headers={**FORM, "Origin": service.url},
    )

    assert retried.status_code == 202
    assert dead in [c["ncentralTicketId"] for c in retried.json()["callbacks"]]


def test_without_credentials_a_cross_site_request_is_refused_before_any_login_prompt(
    service: Service,
) -> None:
    refused = httpx.post(f"{service.url}/api/callbacks/dead/retry", headers=FORM)

    assert refused.status_code == 403
    assert "www-authenticate" not in refused.headers

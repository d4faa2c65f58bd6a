"""The OpenAPI document describes every route and answer, and a live server keeps to it.

schemathesis reads /schema/openapi.json from a real `psa-ledger serve`, generates requests
for every operation from it (bodies, query strings, path ids), sends them with each
route's credential, and checks each answer against the document: no 5xx, a documented
status, content type, headers and body.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.http.app import create_app
from service.settings import Settings
from service.storage.backend import is_url
from tests.conftest import CREDENTIALS
from tests.support.fuzzing import examples
from tests.support.live import NCENTRAL, OPERATOR, Service

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(module_db: Path | str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One server per backend: generated filters, cursors and ids reach its SQL too."""
    service = Service(module_db, log_dir=tmp_path_factory.mktemp("openapi"), log_level="warning")
    service.start()
    # A ticket in each state, so generated UPDATEs and REOPENs meet real tickets too.
    for action in ("CREATE", "RESOLVE"):
        service.ticket(action, "1")
    service.ticket("CREATE", "2")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def document(live: Service) -> dict[str, Any]:
    answer = httpx.get(f"{live.url}/schema/openapi.json")
    assert answer.status_code == 200
    return dict(answer.json())


def _operations() -> list[Any]:
    """Every documented operation, read from the app without serving it, in each mode.

    Negative mode (input the document rules out) wherever there is input to break.
    """
    app = create_app(Settings(db=Path("unused.db")), CREDENTIALS)
    paths = app.openapi_schema.to_schema()["paths"]
    cases = []
    for path, item in paths.items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            cases.append(pytest.param(label, GenerationMode.POSITIVE, id=f"{label} positive"))
            has_input = operation.get("parameters") or operation.get("requestBody")
            if has_input:
                cases.append(pytest.param(label, GenerationMode.NEGATIVE, id=f"{label} negative"))
    return cases


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def api(live: Service) -> Any:
    return schemathesis.openapi.from_url(f"{live.url}/schema/openapi.json")


@pytest.fixture(scope="module")
def concrete(api: Any) -> set[str]:
    """The documented paths without ids: a generated id can spell one (`dead`), and then
    the request is that path's operation, not the templated one's."""
    return {o.ok().path for o in api.get_all_operations() if "{" not in o.ok().path}


def test_the_live_document_has_the_operations_tested_here(api: Any) -> None:
    served = {f"{o.ok().method.upper()} {o.ok().path}" for o in api.get_all_operations()}
    assert served == {case.values[0] for case in OPERATIONS}


@pytest.mark.hypothesis
@pytest.mark.parametrize(("label", "mode"), OPERATIONS)
def test_every_operation_answers_as_the_document_says(
    api: Any, concrete: set[str], live: Service, label: str, mode: GenerationMode
) -> None:
    """A third of the examples on PostgreSQL, to keep `make test` short: the HTTP layer
    that most generated input stops at is the same, and what reaches the SQL (ids and
    filters holding NUL, which this found) is pinned in test_api.py on both backends."""
    operation = api.find_operation_by_label(label)
    credential = NCENTRAL if operation.path.startswith("/ncentral/") else OPERATOR
    count = examples(10 if is_url(live.db) else 30)
    others = concrete - {operation.path}
    cases = operation.as_strategy(mode).filter(lambda case: case.formatted_path not in others)

    @given(case=cases)
    @settings(max_examples=count, deadline=None, suppress_health_check=list(HealthCheck))
    def answers_as_documented(case: Any) -> None:
        case.call_and_validate(auth=credential, checks=CHECKS, timeout=30)

    answers_as_documented()


def test_a_concrete_path_is_its_own_operation_not_a_templated_ones(live: Service) -> None:
    """OpenAPI matches concrete paths before templated ones, and so does the server: the
    id `dead` in `/api/callbacks/{id}/retry` is the bulk retry, which is why the generated
    cases above leave such ids out (no N-central ticket id is `dead`: they are digits)."""
    answer = httpx.post(f"{live.url}/api/callbacks/dead/retry", json={}, auth=OPERATOR)
    assert answer.status_code == 202
    assert answer.json() == {"callbacks": []}


@pytest.mark.parametrize("method", ["put", "post"])
def test_the_ticketing_endpoint_is_described_fully(document: dict[str, Any], method: str) -> None:
    operation = document["paths"]["/ncentral/tickets"][method]

    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["action", "ncentralTicketId"]
    assert set(body["properties"]) == {
        "action", "ncentralTicketId", "title", "details", "psaTicketNumber", "customTags",
    }  # fmt: skip
    answers = operation["responses"]
    assert set(answers) == {"200", "202", "400", "401", "404", "409", "413", "422", "429", "503"}
    identity = answers["200"]["content"]["application/json"]["schema"]["$ref"]
    assert document["components"]["schemas"][identity.rsplit("/", 1)[1]]["required"] == [
        "externalTicketId",
        "ticketUrl",
    ]
    for status in ("400", "401", "404", "409", "413", "422", "429", "503"):
        problem = answers[status]["content"]["application/problem+json"]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}
    assert "Retry-After" in answers["503"]["headers"]
    assert "Retry-After" in answers["429"]["headers"]
    assert "WWW-Authenticate" in answers["401"]["headers"]
    assert operation["security"] == [{"ncentral": []}]


def test_both_credentials_are_declared_and_each_route_names_its_own(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["ncentral"] == schemes["operator"] | {
        "description": schemes["ncentral"]["description"]
    }
    assert {s["type"] for s in schemes.values()} == {"http"}
    assert {s["scheme"] for s in schemes.values()} == {"basic"}
    for path, item in document["paths"].items():
        for operation in item.values():
            expected = {
                "/ncentral/tickets": [{"ncentral": []}],
                "/healthz": None,
                "/metrics": None,
            }.get(path, [{"operator": []}])
            assert operation.get("security") == expected, path


def test_the_documented_query_parameters_are_the_ones_the_api_reads(
    document: dict[str, Any],
) -> None:
    from service.http.api import _EVENT_PARAMS, _TICKET_PARAMS

    def names(path: str) -> set[str]:
        parameters = document["paths"][path]["get"].get("parameters", [])
        return {p["name"] for p in parameters if p["in"] == "query"}

    assert names("/api/events") == _EVENT_PARAMS
    assert names("/api/tickets") == _TICKET_PARAMS
    assert names("/api/tickets/{external_ticket_id}") == {"as_of"}

"""N-central's Ticketing Endpoint: authenticate, hand the body to the intake, answer.

The everyday request is answered by the route's fast lane (service.http.fastlane); this
handler answers the rest, and its declaration is the route's OpenAPI description.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, HttpMethod, Request, Response, route
from litestar.exceptions import ClientException

from service.http import openapi
from service.http.auth import ncentral_guard
from service.http.fastlane import FastLane
from service.http.responses import respond
from service.ledger.intake import MAX_BODY, Intake

__all__ = ["NcentralController"]


class NcentralController(Controller):
    path = "/ncentral/tickets"
    guards = [ncentral_guard]  # noqa: RUF012  (Litestar reads it as a class attribute)
    tags = ["N-central"]  # noqa: RUF012
    security = openapi.NCENTRAL_SECURITY

    @route(
        http_method=[HttpMethod.PUT, HttpMethod.POST],
        request_max_body_size=MAX_BODY,
        summary="N-central's Custom PSA Ticketing Endpoint",
        status_code=200,
        responses=openapi.TICKETING_ANSWERS,
        operation_class=openapi.documented(body=openapi.TICKETING_BODY),
        middleware=[FastLane],
    )
    async def receive(self, request: Request[Any, Any, Any], intake: Intake) -> Response[bytes]:
        try:
            body: bytes | None = await request.body()
        except ClientException as exc:
            if exc.status_code != 413:
                raise
            body = None
        request_id = request.state.request_id  # the access log's, see service.logs
        answer = await intake.receive(body, actor=request.state.actor, request_id=request_id)
        return respond(answer)

"""N-central's everyday request, answered without Litestar's per-request pipeline.

Building a Request, running the guard on it, resolving the handler's dependencies and
turning an answer into a Response costs more than recording the event (a quarter of a
millisecond a request, measured in bench/results.md). This route middleware sits in front
of the ticketing handler and answers the request that needs none of it: N-central's own
credential, from an address that may try, announcing a body within the limit. It reads
the body, hands it to the intake and sends the answer as `respond` would.

Everything else goes on to the handler, which answers it as it always has: the guard
refuses, counts and logs a wrong credential (401, then 429), Litestar refuses a body over
the limit, a body sent without its length is read by Litestar. Nothing here decides: the
checks are the guard's, made without their side effects, and the answer is the
intake's. The route's OpenAPI description is the handler's, unchanged.
"""

from __future__ import annotations

from typing import cast

from litestar.exceptions import InternalServerException
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from service.http.auth import admitted_ncentral
from service.ledger.intake import MAX_BODY, Intake

__all__ = ["FastLane"]


class FastLane:
    """Route middleware for `/ncentral/tickets`; `app` is the route's own handler."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _announced_length(scope)
        actor = admitted_ncentral(scope) if length is not None else None
        if actor is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        state = scope["state"]
        state["actor"] = actor  # for the access log, as the guard sets it
        intake: Intake = scope["litestar_app"].state.intake
        answer = await intake.receive(body, actor=actor, request_id=state["request_id"])
        content = answer.content()
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (answer.headers or {}).items()
        ]
        headers.append((b"content-type", answer.media_type.encode("latin-1")))
        headers.append((b"content-length", str(len(content)).encode("latin-1")))
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": answer.status,
            "headers": headers,
        }
        whole: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": content,
            "more_body": False,
        }
        await send(start)
        await send(whole)


def _announced_length(scope: Scope) -> int | None:
    """The body's announced length when the fast lane may read it: given, and within the limit."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if 0 <= length <= MAX_BODY else None
    return None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body; None if it grew past the limit, which `RecordRequest` answers with 413."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # What Litestar raises for a client that leaves mid-body: nothing is recorded.
            raise InternalServerException("client disconnected prematurely")
        request = cast("HTTPRequestEvent", message)
        chunk = request.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > MAX_BODY:
                return None
            chunks.append(chunk)
        if not request.get("more_body", False):
            return b"".join(chunks)

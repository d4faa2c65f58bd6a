"""Every error leaves as application/problem+json (RFC 9457), and never with a traceback."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from service.http.responses import respond
from service.ledger.answers import problem
from service.storage import StoreUnavailable

__all__ = ["EXCEPTION_HANDLERS"]

log = logging.getLogger("psa_ledger.errors")


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    title = _TITLES.get(exc.status_code, "Request refused")
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        first = exc.extra[0]
        extra["field"] = first.get("key") if isinstance(first, dict) else None
    return respond(problem(exc.status_code, title, exc.detail, **extra), exc.headers)


def _unavailable(request: Request[Any, Any, Any], exc: StoreUnavailable) -> Response[bytes]:
    return respond(
        problem(503, "Store unavailable", f"the event log cannot take writes now: {exc}")
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return respond(problem(500, "Internal error", "an unexpected error; it has been logged"))


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
}

EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: _http,
    StoreUnavailable: _unavailable,
    Exception: _unexpected,
}

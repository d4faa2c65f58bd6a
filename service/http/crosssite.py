"""Operator POSTs come from the operator's own tools, not from another site.

A browser resends cached Basic credentials with any request to our origin, so a page on
another site could make an operator's browser POST `/api/callbacks/dead/retry`. Such a
page can send only what an HTML form can: no `Content-Type: application/json` without a
CORS preflight, which psa-ledger never grants. So a state-changing request must either
carry a JSON content type (the shell, curl, scripts) or show that it came from our own
origin (`Origin`, `Sec-Fetch-Site`). A browser that says another site sent it is refused
whatever else the request claims.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

__all__ = ["origin_of", "same_origin_guard"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def same_origin_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Refuse (403) a state-changing request that may come from another site."""
    if connection.scope.get("method", "GET") in _SAFE_METHODS:
        return
    headers = connection.headers
    site = headers.get("sec-fetch-site")
    origin = headers.get("origin")
    if site in ("cross-site", "same-site"):
        raise _refused(f"Sec-Fetch-Site: {site}")
    if origin is not None and not _ours(origin, connection):
        raise _refused(f"Origin: {origin[:200]}")
    if origin is not None or site == "same-origin" or _is_json(headers.get("content-type")):
        return
    raise _refused("neither a JSON body nor an Origin")


def origin_of(url: str) -> str:
    """`https://psa.example.net/x` -> `https://psa.example.net`: what a browser sends as Origin."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _ours(origin: str, connection: ASGIConnection) -> bool:
    """Our public URL's origin, or the host the request was sent to (a proxy may keep it)."""
    if origin.lower() == connection.app.state.public_origin:
        return True
    host = connection.headers.get("host")
    try:
        sent_from = urlsplit(origin).netloc.lower()
    except ValueError:  # not a URL at all, e.g. `http://[`
        return False
    return host is not None and sent_from == host.lower()


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def _refused(why: str) -> PermissionDeniedException:
    return PermissionDeniedException(
        f"refused as a possible cross-site request ({why}): send the body as"
        " Content-Type: application/json, e.g. curl --json '{}'"
    )

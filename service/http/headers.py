"""The headers every answer carries, set in one place for every route, errors included.

A `before_send` hook rather than per-route headers: it also sees the 401s, 404s and 405s
that Litestar answers before any handler runs, and a route added later cannot forget them.
A header a handler set itself is kept.
"""

from __future__ import annotations

from litestar.types import Message, Scope

__all__ = ["API_CSP", "PAGE_CSP", "secure_headers"]

#: Pages: no scripts at all, styles only from the page itself, so a script smuggled into a
#: title could not run even if escaping failed; and no other site may frame the page
#: (clickjacking an operator into a click).
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'"
)
#: Everything else is data: a browser that opens it loads nothing and frames nothing.
API_CSP = "default-src 'none'; frame-ancestors 'none'"


async def secure_headers(message: Message, scope: Scope) -> None:
    """Add the security headers to the start of every HTTP answer."""
    if message["type"] != "http.response.start":
        return
    # Read and extended as the raw list: this runs on every answer, and Litestar's
    # header views decode every name on every lookup.
    headers = message["headers"] = list(message.get("headers", ()))
    present = {name.lower() for name, _ in headers}
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    defaults = _PAGE_DEFAULTS if content_type.startswith(b"text/html") else _API_DEFAULTS
    headers.extend(header for header in defaults if header[0] not in present)


def _defaults(csp: str) -> tuple[tuple[bytes, bytes], ...]:
    values = {
        # A browser must not guess that a JSON body holding N-central's text is HTML.
        "x-content-type-options": "nosniff",
        "content-security-policy": csp,
        # For browsers that predate CSP's frame-ancestors.
        "x-frame-options": "DENY",
        # Answers carry tickets and the audit log: no proxy or browser cache keeps them.
        "cache-control": "no-store",
    }
    return tuple(
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in values.items()
    )


_PAGE_DEFAULTS = _defaults(PAGE_CSP)
_API_DEFAULTS = _defaults(API_CSP)

"""An `Answer` (the ledger's HTTP-free reply) as a Litestar `Response`: the one conversion."""

from __future__ import annotations

from typing import Any

from litestar import Response

from service.ledger.answers import Answer, problem

__all__ = ["problem_response", "respond"]


def respond(answer: Answer, headers: dict[str, str] | None = None) -> Response[bytes]:
    """`answer` as sent: its status, its body, problem+json for refusals, its headers."""
    return Response(
        answer.content(),
        status_code=answer.status,
        media_type=answer.media_type,
        headers={**(answer.headers or {}), **(headers or {})},
    )


def problem_response(status: int, title: str, detail: str, **extensions: Any) -> Response[bytes]:
    """An RFC 9457 problem, as `problem` builds it, ready to return from a handler."""
    return respond(problem(status, title, detail, **extensions))

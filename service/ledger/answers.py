"""What psa-ledger answers, as data: a status and a JSON body (or none).

An answer is recorded with the event that caused it, so a retry gets the very same
answer back and an auditor can see what N-central was told.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["PROBLEM_JSON", "Answer", "identity", "problem"]

PROBLEM_JSON = "application/problem+json"


class Answer(msgspec.Struct, frozen=True, omit_defaults=True):
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None

    @property
    def media_type(self) -> str:
        return PROBLEM_JSON if self.status >= 400 else "application/json"

    def content(self) -> bytes:
        return b"" if self.body is None else msgspec.json.encode(self.body)

    def encode(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def decode(cls, text: str) -> Answer:
        return msgspec.json.decode(text, type=cls)


def identity(external_ticket_id: str, base_url: str) -> dict[str, str]:
    """The body N-central keeps for the ticket: our number and where a technician opens it."""
    return {
        "externalTicketId": external_ticket_id,
        "ticketUrl": f"{base_url}/tickets/{external_ticket_id}",
    }


def problem(status: int, title: str, detail: str, **extensions: Any) -> Answer:
    """An RFC 9457 problem; extension members name what was wrong."""
    body = {
        "type": f"urn:psa-ledger:problem:{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        **{k: v for k, v in extensions.items() if v is not None},
    }
    headers = {"Retry-After": "5"} if status == 503 else None
    return Answer(status, body, headers)

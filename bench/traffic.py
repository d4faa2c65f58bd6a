"""What the write-path benchmarks send: 100 tickets created (or as many as asked), then
UPDATEs spread over them."""

from __future__ import annotations

import msgspec

TICKETS = 100


def create(ticket: int) -> bytes:
    return msgspec.json.encode(
        {"action": "CREATE", "ncentralTicketId": str(ticket), "title": "t", "details": "d"}
    )


def update(n: int, tickets: int = TICKETS) -> bytes:
    return msgspec.json.encode(
        {"action": "UPDATE", "ncentralTicketId": str(n % tickets), "details": f"note {n}"}
    )

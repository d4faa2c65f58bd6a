"""`python -m bench.baseline --port N`: the bare Litestar app that ingest is measured against.

It does what the framework alone must do for N-central's request and nothing of ours: one
handler on `PUT /ncentral/tickets` that decodes the body into a msgspec Struct of the
request's shape and answers a small JSON identity. No auth, no ledger, no database. It is
served by uvicorn with the settings `psa-ledger serve` uses (httptools and uvloop, picked
by uvicorn's "auto", no access log), so the ratio against it is the cost of our work.
The Struct is a copy, not an import of `TicketRequest`, so that nothing of ours is on its
path; a test keeps the two the same shape.
"""

from __future__ import annotations

import argparse

import msgspec
import uvicorn
from litestar import Litestar, put


class TicketShape(msgspec.Struct, rename="camel", frozen=True):
    action: str
    ncentral_ticket_id: str
    title: str | None = None
    details: str | None = None
    psa_ticket_number: str | None = None
    custom_tags: dict[str, str] | None = None


class Identity(msgspec.Struct, rename="camel", frozen=True):
    external_ticket_id: str
    ticket_url: str


@put("/ncentral/tickets", status_code=200)
async def receive(data: TicketShape) -> Identity:
    number = f"PSA-{data.ncentral_ticket_id}"
    return Identity(external_ticket_id=number, ticket_url=f"http://bench/tickets/{number}")


def create_app() -> Litestar:
    return Litestar(route_handlers=[receive])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    options = parser.parse_args(argv)
    uvicorn.run(
        create_app(),
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()

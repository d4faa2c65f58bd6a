"""What the server does by itself once it has started, before anyone asks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from litestar.testing import AsyncTestClient

from service.audit.window import OpenTally
from service.http.app import create_app
from service.ledger.intake import AnswerPolicy, RecordRequest
from service.ledger.writer import Ledger
from service.settings import Settings
from tests.conftest import CREDENTIALS

POLICY = AnswerPolicy(base_url="http://psa.test")


async def test_the_review_pages_open_counts_are_summed_after_the_start(
    log_db: Path | str,
) -> None:
    """The first review after a start would otherwise sum the whole log while a person
    waits (seconds on a big log): the server sums it in the background as it starts."""
    await _created(log_db, 1_050)  # 2,100 events: two whole blocks of 1,024
    app = create_app(Settings(db=log_db, public_url="https://psa.test"), CREDENTIALS)
    tally: OpenTally = app.dependencies["sources"].dependency().tally
    assert tally.summed == 0
    async with AsyncTestClient(app):
        for _ in range(400):
            if tally.summed:
                break
            await asyncio.sleep(0.025)
    assert tally.summed == 2_048


async def _created(db: Path | str, tickets: int) -> None:
    ledger = Ledger(db)
    await ledger.open()
    try:
        await asyncio.gather(
            *(
                ledger.submit(RecordRequest(POLICY, _create(number), actor="nc", request_id="r"))
                for number in range(tickets)
            )
        )
    finally:
        await ledger.close()


def _create(number: int) -> bytes:
    body = {"action": "CREATE", "ncentralTicketId": str(number), "title": "t", "details": "d"}
    return msgspec.json.encode(body)

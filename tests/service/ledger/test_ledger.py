"""The writer on its own: another process appending to the same file, and group commit."""

from __future__ import annotations

import asyncio
import tracemalloc
from contextlib import closing
from pathlib import Path

import msgspec
import pytest

from service.audit.verify import verify
from service.ledger.intake import Intake, Received
from service.ledger.writer import Ledger
from service.storage.sqlite import connect_sync
from tests.support.live import Log

INTAKE = Intake(base_url="http://psa.test")


def request(action: str, ticket: str, note: str = "") -> Received:
    body = {"action": action, "ncentralTicketId": ticket, "title": "t", "details": note}
    return Received(INTAKE, msgspec.json.encode(body), actor="test", request_id=note)


def sent(**body: object) -> Received:
    return Received(INTAKE, msgspec.json.encode(body), actor="test", request_id="r")


def replay(db: Path) -> tuple[list[str], dict[str, str]]:
    """What replay finds wrong, and the states the tickets table holds."""
    log = Log(db)
    with closing(connect_sync(db)) as conn:
        live = dict(conn.execute("SELECT ncentral_ticket_id, state FROM tickets").fetchall())
    return log.replay_problems(), live


async def test_two_writers_on_one_file_keep_one_gapless_chain(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    server, tool = Ledger(db), Ledger(db)
    await server.open()
    await tool.open()
    try:
        await server.submit(request("CREATE", "1"))
        await tool.submit(request("RESOLVE", "1", "by the tool"))
        # The server's cache still says "open": it must notice and re-read, not fork the log.
        answer = await server.submit(request("REOPEN", "1", "from the server"))
        assert answer.status == 200
        await tool.submit(request("UPDATE", "1", "tool again"))
        await server.submit(request("RESOLVE", "1", "server again"))
    finally:
        await server.close()
        await tool.close()
    problems, live = replay(db)
    assert problems == []
    assert live == {"1": "closed"}


async def test_concurrent_requests_share_transactions(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    commits: list[int] = []
    ledger.on_commit(lambda batch: commits.append(len(batch.events)))
    await ledger.open()
    try:
        await ledger.submit(request("CREATE", "7"))
        answers = await asyncio.gather(
            *(ledger.submit(request("UPDATE", "7", f"n{n}")) for n in range(200))
        )
    finally:
        await ledger.close()
    assert {a.status for a in answers} == {200}
    assert sum(commits) == 202 and len(commits) < 50, commits
    assert replay(tmp_path / "ledger.db")[0] == []


async def test_more_requests_than_the_queue_holds_all_complete(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db", batch_limit=2)  # a queue of 32
    await ledger.open()
    try:
        await ledger.submit(request("CREATE", "9"))
        answers = await asyncio.gather(
            *(ledger.submit(request("UPDATE", "9", f"n{n}")) for n in range(300))
        )
    finally:
        await ledger.close()
    assert [a.status for a in answers] == [200] * 300
    assert replay(tmp_path / "ledger.db")[0] == []


@pytest.mark.parametrize("first_id", [1000, "t"], ids=["accepted", "refused"])
async def test_the_writer_keeps_no_ticket_text_between_batches(
    tmp_path: Path, first_id: int | str
) -> None:
    """Neither accepted CREATEs nor refused ones (an id that is not N-central's) stay held."""
    ledger = Ledger(tmp_path / "ledger.db")
    await ledger.open()
    try:
        await ledger.submit(request("CREATE", "warm-up"))
        tracemalloc.start()
        try:
            for n in range(40):
                details = f"{n}: disk 98% full\n" * 50_000  # about 1 MB each
                await ledger.submit(
                    sent(
                        action="CREATE",
                        ncentralTicketId=f"{first_id}{n}",
                        title="disk",
                        details=details,
                    )
                )
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        await ledger.close()
    # Before the writer dropped content it held every ticket's details: ~40 MB here.
    assert held < 4_000_000, f"{held:,} bytes still held after 40 MB of details"


async def test_content_the_writer_dropped_stays_in_the_tickets_table(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    tags = {"site": "Leeds"}
    ledger = Ledger(db)
    await ledger.open()
    try:
        await ledger.submit(
            sent(action="CREATE", ncentralTicketId="5", title="T", details="A", customTags=tags)
        )
        await ledger.submit(sent(action="RESOLVE", ncentralTicketId="5"))
    finally:
        await ledger.close()
    restarted = Ledger(db)  # a writer that read the ticket back from the file
    await restarted.open()
    try:
        await restarted.submit(sent(action="REOPEN", ncentralTicketId="5", details="B"))
        await restarted.submit(sent(action="UPDATE", ncentralTicketId="5"))
    finally:
        await restarted.close()
    with closing(connect_sync(db)) as conn:
        row = conn.execute(
            "SELECT state, title, details, CAST(custom_tags AS TEXT) FROM tickets"
            " WHERE ncentral_ticket_id = '5'"
        ).fetchone()
        tag_rows = conn.execute("SELECT key, value FROM ticket_tags").fetchall()
        report = verify(conn)
    assert tuple(row) == ("reopened", "T", "B", '{"site":"Leeds"}')
    assert [tuple(tag) for tag in tag_rows] == [("site", "Leeds")]
    assert report.ok, report.findings

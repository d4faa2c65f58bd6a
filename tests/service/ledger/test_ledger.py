"""The writer on its own, on each backend: another writer appending to the same log, and
group commit."""

from __future__ import annotations

import asyncio
import sqlite3
import tracemalloc
from contextlib import closing
from pathlib import Path

import msgspec
import pytest

from service.audit.verify import verify
from service.ledger.intake import AnswerPolicy, RecordRequest
from service.ledger.writer import Batch, Ledger, Tail
from service.storage import rows
from service.storage.appends import INSERT_EVENT
from service.storage.backend import backend_for
from service.storage.postgres.appends import COPY_FROM
from service.timestamps import utc_now
from tests.support.live import Log, read

POLICY = AnswerPolicy(base_url="http://psa.test")


def request(action: str, ticket: str, note: str = "") -> RecordRequest:
    body = {"action": action, "ncentralTicketId": ticket, "title": "t", "details": note}
    return RecordRequest(POLICY, msgspec.json.encode(body), actor="test", request_id=note)


def sent(**body: object) -> RecordRequest:
    return RecordRequest(POLICY, msgspec.json.encode(body), actor="test", request_id="r")


def replay(db: Path | str) -> tuple[list[str], dict[str, str]]:
    """What replay finds wrong, and the states the tickets table holds."""
    log = Log(db)
    return log.replay_problems(), log.states()


async def test_two_writers_on_one_log_keep_one_gapless_chain(log_db: Path | str) -> None:
    db = log_db
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


async def test_a_batch_a_busy_file_refused_is_written_under_its_lock(tmp_path: Path) -> None:
    """Another process appends between the writer's every read and write: the batch is
    refused once, then decided and written under the file's write lock. Refused until the
    writer gave up, a callback delivered but not recorded would be sent again."""
    db = tmp_path / "ledger.db"
    ledger = Ledger(db)
    await ledger.open()
    other = _Interloper(db)
    try:
        await ledger.submit(request("CREATE", "1"))
        ledger._clock = other.clock  # stamps every event the writer decides
        answer = await ledger.submit(request("UPDATE", "1", "while the other appends"))
    finally:
        await ledger.close()
        other.db.close()
    assert answer.status == 200
    assert other.appended == 1  # refused once, not again
    assert replay(db) == ([], {"1": "open"})


class _Interloper:
    """A second process on the file: each time the writer stamps an event, it appends a
    connection test of its own, if it can take the file's write lock at once."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, timeout=0, isolation_level=None)
        self.appended = 0

    def clock(self) -> str:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return utc_now()  # the writer holds the lock
        tail = self.db.execute(
            "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"
        ).fetchone()
        batch = Batch({}, Tail(*tail), utc_now)
        sent(action="CREATE", ncentralTicketId=f"TEST_NC_TICKET_ID{self.appended}").apply(batch)
        self.db.executemany(INSERT_EVENT, [rows.event_row(event) for event in batch.events])
        self.db.execute("COMMIT")
        self.appended += 1
        return utc_now()


async def test_concurrent_requests_share_transactions(log_db: Path | str) -> None:
    ledger = Ledger(log_db)
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
    assert replay(log_db)[0] == []


async def test_more_requests_than_the_queue_holds_all_complete(log_db: Path | str) -> None:
    ledger = Ledger(log_db, batch_limit=2)  # a queue of 32
    await ledger.open()
    try:
        await ledger.submit(request("CREATE", "9"))
        answers = await asyncio.gather(
            *(ledger.submit(request("UPDATE", "9", f"n{n}")) for n in range(300))
        )
    finally:
        await ledger.close()
    assert [a.status for a in answers] == [200] * 300
    assert replay(log_db)[0] == []


async def test_large_requests_are_batched_by_their_bytes_in_arrival_order(
    log_db: Path | str,
) -> None:
    """A batch is decided and inserted on the event loop's thread, which answers nothing
    meanwhile: past `batch_bytes` of requests, the rest wait for the next batch, in the
    order they came. Small requests still share one batch. Both backends."""
    ledger = Ledger(log_db, batch_bytes=100_000)
    batches: list[list[str | None]] = []
    ledger.on_commit(lambda batch: batches.append([e.ticket_id for e in batch.events]))
    await ledger.open()
    try:
        large = [request("CREATE", f"{n + 1}", "x" * 40_000) for n in range(5)]
        small = [request("CREATE", f"{n + 100}") for n in range(5)]
        answers = await asyncio.gather(*(ledger.submit(r) for r in [*large, *small]))
    finally:
        await ledger.close()
    assert [a.status for a in answers] == [200] * 10
    # Two of 40 KB to a batch (a third would pass 100,000 bytes); the last large one
    # carried over leads the small ones, which all fit behind it.
    creates = [batch[::2] for batch in batches]  # each CREATE, then its delivery
    assert creates == [["1", "2"], ["3", "4"], ["5", *(f"{n + 100}" for n in range(5))]]
    assert replay(log_db)[0] == []


async def test_a_create_the_writer_has_not_cached_is_answered_by_the_log(
    log_db: Path | str,
) -> None:
    """The writer presumes a CREATE's uncached ticket new, without reading it: when the log
    holds the ticket already (from before a restart, or only refused so far), the answers
    are still the log's and the chain stays one."""
    first = Ledger(log_db)
    await first.open()
    try:
        created = await first.submit(request("CREATE", "41"))
        unknown = await first.submit(request("UPDATE", "42"))
    finally:
        await first.close()
    restarted = Ledger(log_db)
    await restarted.open()
    try:
        existing = await restarted.submit(request("CREATE", "41", "sent again, changed"))
        await restarted.close()
        await restarted.open()
        retried = await restarted.submit(request("CREATE", "41"))
        await restarted.close()
        await restarted.open()
        opened = await restarted.submit(request("CREATE", "42"))
    finally:
        await restarted.close()
    assert unknown.status == 404
    assert existing == retried == created
    assert opened.status == 200 and opened.body["externalTicketId"] == "PSA-6"
    outcomes = [
        (e["ticket_id"], e["action"], e["outcome"])
        for e in read(log_db, "SELECT * FROM events ORDER BY position")
    ]
    assert outcomes == [
        ("41", "CREATE", "accepted"),
        ("41", "identity_delivered", "recorded"),
        ("42", "UPDATE", "not_found"),
        ("41", "CREATE", "existing"),
        ("41", "CREATE", "duplicate"),
        ("42", "CREATE", "accepted"),
        ("42", "identity_delivered", "recorded"),
    ]
    assert replay(log_db) == ([], {"41": "open", "42": "open"})


async def test_a_burst_is_stored_exactly_as_sent_and_its_presumptions_checked(
    log_db: Path | str,
) -> None:
    """A batch of `COPY_FROM` requests or more goes to PostgreSQL by COPY (binary, each
    column's type named), decided as it is sent: every character and every NULL (a
    refused body names no ticket) must arrive as sent, and the log must still refuse a
    CREATE presumed new for a ticket it holds (the whole batch is then decided again).
    Both backends."""
    awkward = "tab\there\nnew line\r\\ back\\slash \\N é 𝄞 \\."
    first = Ledger(log_db)
    await first.open()
    try:
        created = await first.submit(request("CREATE", "500"))
    finally:
        await first.close()
    restarted = Ledger(log_db)
    await restarted.open()
    try:
        burst = [request("CREATE", f"{n + 1}", f"{awkward} {n}") for n in range(COPY_FROM + 8)]
        unreadable = RecordRequest(POLICY, b"not json", actor="test", request_id="unreadable")
        answers = await asyncio.gather(
            *(restarted.submit(r) for r in [*burst, unreadable, request("CREATE", "500")])
        )
    finally:
        await restarted.close()
    assert [a.status for a in answers] == [200] * (COPY_FROM + 8) + [400, 200]
    assert answers[-1] == created  # a retry: the log knew the ticket the writer presumed new
    (refused,) = read(log_db, "SELECT * FROM events WHERE request_id = 'unreadable'")
    assert (refused["ticket_id"], refused["stream_version"], refused["state_after"]) == (
        None,
        None,
        None,
    )
    details = {
        row["ticket_id"]: msgspec.json.decode(row["payload"])["details"]
        for row in read(log_db, "SELECT * FROM events WHERE action = 'CREATE'")
    }
    assert details == {"500": ""} | {f"{n + 1}": f"{awkward} {n}" for n in range(COPY_FROM + 8)}
    assert replay(log_db)[0] == []


@pytest.mark.parametrize("first_id", [1000, "t"], ids=["accepted", "refused"])
async def test_the_writer_keeps_no_ticket_text_between_batches(
    log_db: Path | str, first_id: int | str
) -> None:
    """Neither accepted CREATEs nor refused ones (an id that is not N-central's) stay held."""
    ledger = Ledger(log_db)
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


async def test_content_the_writer_dropped_stays_in_the_tickets_table(log_db: Path | str) -> None:
    db = log_db
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
    row = read(
        db,
        "SELECT state, title, details, CAST(custom_tags AS TEXT) AS tags FROM tickets"
        " WHERE ncentral_ticket_id = '5'",
    )[0]
    tag_rows = read(db, "SELECT key, value FROM ticket_tags")
    with closing(backend_for(db).connect_sync()) as conn:
        report = verify(conn)
    assert tuple(row.values()) == ("reopened", "T", "B", '{"site":"Leeds"}')
    assert [tuple(tag.values()) for tag in tag_rows] == [("site", "Leeds")]
    assert report.ok, report.findings

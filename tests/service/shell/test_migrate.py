"""`psa-ledger migrate --to URL|FILE`: a SQLite log moved into an empty PostgreSQL
database, and back into a new file."""

from __future__ import annotations

import asyncio
import stat
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import msgspec

from service.audit.replay import rewind
from service.ledger.intake import AnswerPolicy, RecordRequest
from service.ledger.writer import Ledger
from service.storage import tickets
from service.storage.backend import backend_for
from tests.support.harness import cli, write_log
from tests.support.live import read

H = timedelta(hours=1)
STEPS = [
    (0 * H, {"action": "CREATE", "ncentralTicketId": "1", "title": "a\x00b", "details": "d",
             "customTags": {"site\x00": "Leeds", "k": "\ue000"}}),
    (1 * H, {"action": "UPDATE", "ncentralTicketId": "1", "details": "more"}),
    (2 * H, {"action": "RESOLVE", "ncentralTicketId": "1"}),
    (3 * H, {"action": "RESOLVE", "ncentralTicketId": "1"}),
    (4 * H, b"{not json"),
    (5 * H, {"action": "CREATE", "ncentralTicketId": "2", "title": "t", "details": "d"}),
]  # fmt: skip


def a_sqlite_log(path: Path) -> None:
    """History in sync mode, then a CREATE in async mode that still owes its callback."""
    write_log(path, STEPS)

    async def owe_a_callback() -> None:
        ledger = Ledger(path)
        await ledger.open()
        policy = AnswerPolicy(base_url="http://psa.example", create_mode="async")
        body = {"action": "CREATE", "ncentralTicketId": "3", "title": "t", "details": "d"}
        try:
            await ledger.submit(
                RecordRequest(policy, msgspec.json.encode(body), actor="nc", request_id="x")
            )
        finally:
            await ledger.close()

    asyncio.run(owe_a_callback())


def every_row(db: Path | str) -> dict[str, object]:
    with closing(backend_for(db).connect_sync()) as conn:
        projected = tickets.rows_by_ticket(conn)
    return {
        "events": read(db, "SELECT * FROM events ORDER BY position"),
        "tickets": projected,
        "callbacks": read(db, "SELECT * FROM callbacks ORDER BY ncentral_ticket_id"),
    }


def test_every_position_and_hash_moves_and_the_copy_verifies(
    tmp_path: Path, postgres_url: str
) -> None:
    source = tmp_path / "ledger.db"
    a_sqlite_log(source)

    done = cli("migrate", "--to", postgres_url, db=source)

    assert "verify: OK: 9 events, 3 tickets; chain intact" in done.stdout
    assert every_row(postgres_url) == every_row(source)
    ticket = read(postgres_url, "SELECT title FROM tickets WHERE ncentral_ticket_id = '1'")
    assert ticket[0]["title"] != "a\x00b", "stored shielded, yet read back whole (above)"
    # Analysed as it arrives, so that the first requests on the copy are planned on its
    # statistics, not on the defaults of tables the server has never looked at.
    analysed = read(
        postgres_url, "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
    )
    assert {"events", "tickets", "callbacks"} <= {row["relname"] for row in analysed}


def test_the_copy_has_the_checkpoints_the_service_would_have_made_there_and_back(
    tmp_path: Path, postgres_url: str
) -> None:
    """Checkpoints are derived, so they are made again on the way, not copied: time travel
    on the copy starts as near as on the original, and `verify` proves each one."""
    source, back = tmp_path / "ledger.db", tmp_path / "back.db"
    a_sqlite_log(source)

    there = cli("migrate", "--to", postgres_url, "--checkpoint-every", "4", db=source)
    again = cli("migrate", "--to", str(back), "--checkpoint-every", "3", db=postgres_url)

    assert "verify: OK" in there.stdout and "verify: OK" in again.stdout
    positions = "SELECT position, tickets FROM checkpoints ORDER BY position"
    # At 4 a full one (both tickets so far); at 8 the delta of what changed since.
    assert read(postgres_url, positions) == [
        {"position": 4, "tickets": 1},
        {"position": 8, "tickets": 2},
    ]
    assert [row["position"] for row in read(back, positions)] == [3, 6, 9]
    for copy in (postgres_url, back):
        with closing(backend_for(copy).connect_sync()) as conn:
            assert rewind(conn, 7).tickets() == rewind(conn, 7, from_genesis=True).tickets()


def test_the_log_goes_on_from_where_the_file_ended(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "ledger.db"
    a_sqlite_log(source)
    cli("migrate", "--to", postgres_url, db=source)

    async def go_on() -> None:
        ledger = Ledger(postgres_url)
        await ledger.open()
        body = msgspec.json.encode({"action": "REOPEN", "ncentralTicketId": "1"})
        try:
            answer = await ledger.submit(
                RecordRequest(
                    AnswerPolicy(base_url="http://psa.example"), body, actor="nc", request_id="y"
                )
            )
        finally:
            await ledger.close()
        assert answer.status == 200

    asyncio.run(go_on())
    assert read(postgres_url, "SELECT MAX(position) AS last FROM events")[0]["last"] == 10
    assert "OK" in cli("verify", db=postgres_url).stdout


def test_a_target_that_is_not_empty_is_refused_and_left_alone(
    tmp_path: Path, postgres_url: str
) -> None:
    source = tmp_path / "ledger.db"
    a_sqlite_log(source)
    cli("migrate", "--to", postgres_url, db=source)

    again = cli("migrate", "--to", postgres_url, db=source, check=False)

    assert again.returncode != 0
    assert "not empty" in again.stderr
    assert len(read(postgres_url, "SELECT position FROM events")) == 9


def test_only_between_sqlite_and_postgresql(tmp_path: Path, postgres_url: str) -> None:
    wrong_way = cli("migrate", "--to", str(tmp_path / "x.db"), db=tmp_path / "y.db", check=False)
    assert wrong_way.returncode == 2 and "postgresql://" in wrong_way.stderr
    same_kind = cli("migrate", "--to", postgres_url, db=postgres_url, check=False)
    assert same_kind.returncode == 2 and "SQLite file" in same_kind.stderr


def test_there_and_back_again_event_for_event(tmp_path: Path, postgres_url: str) -> None:
    source, back = tmp_path / "ledger.db", tmp_path / "back" / "ledger.db"
    a_sqlite_log(source)
    cli("migrate", "--to", postgres_url, db=source)

    done = cli("migrate", "--to", str(back), db=postgres_url)

    assert "verify: OK: 9 events, 3 tickets; chain intact" in done.stdout
    assert every_row(back) == every_row(source)
    assert stat.S_IMODE(back.stat().st_mode) == 0o600, "a log file is private (security.md)"
    assert "OK" in cli("verify", db=back).stdout


def test_a_target_file_that_is_not_empty_is_refused_and_left_alone(
    tmp_path: Path, postgres_url: str
) -> None:
    source = tmp_path / "ledger.db"
    a_sqlite_log(source)
    cli("migrate", "--to", postgres_url, db=source)
    before = source.read_bytes()

    again = cli("migrate", "--to", str(source), db=postgres_url, check=False)

    assert again.returncode != 0
    assert "not empty" in again.stderr
    assert source.read_bytes() == before

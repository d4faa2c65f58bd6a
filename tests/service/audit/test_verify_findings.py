"""verify's findings on damaged logs, pinned: every kind of damage, in one process and in
workers, gives the report that verify gave before it read each row once for chain and
rules (`verify_findings.json`, written by the code of 5a1375a: `PYTHONPATH=<its tree>
python tests/service/audit/test_verify_findings.py OUT.json SCRATCH_FOLDER`)."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from bench.biglog import build_log
from service.audit.verify import Report, verify
from service.storage.backend import backend_for
from service.storage.sqlite import connect_sync
from tests.support.backends import copied_to_postgres
from tests.support.postgres import Postgres


def copied_row(position: int, *, source: int) -> str:
    """The row at `source` copied to `position`, its stream_version made unused."""
    columns = (
        "ticket_id, stream_version, action, outcome, state_before, state_after, recorded_at,"
        " request_id, actor, payload, response, schema_version, prev_hash, hash"
    )
    copied = columns.replace("stream_version", "stream_version + 100")
    return (
        f"INSERT INTO events (position, {columns})"
        f" SELECT {position}, {copied} FROM events WHERE position = {source}"
    )


#: What each damage does to a copy of a generated log of 6,000 events (checkpoints every
#: 1,000), the append-only triggers dropped first.
DAMAGES: dict[str, list[str]] = {
    "lawful": [],
    "edited-payload": [
        "UPDATE events SET payload = replace(payload, '98%', '9%') WHERE position = 2100"
    ],
    "payload-not-json": ["UPDATE events SET payload = '{not json' WHERE position = 1201"],
    "payload-other-action": [
        "UPDATE events SET payload = replace(payload, 'RESOLVE', 'REOPEN')"
        " WHERE position = 3005 AND action = 'RESOLVE'",
        "UPDATE events SET payload = replace(payload, 'UPDATE', 'RESOLVE')"
        " WHERE position BETWEEN 3100 AND 3110 AND action = 'UPDATE'",
    ],
    "payload-alias-and-mismatch": [
        "UPDATE events SET payload = replace(payload, '\"RESOLVE\"', '\"close\"')"
        " WHERE position BETWEEN 4000 AND 4100",
        'UPDATE events SET payload = replace(payload, \'"psaTicketNumber":"PSA-\','
        ' \'"psaTicketNumber":"PSA-9\') WHERE position BETWEEN 4200 AND 4220',
    ],
    "connection-test-id": [
        "UPDATE events SET payload = replace(payload, 'ncentralTicketId\":\"',"
        " 'ncentralTicketId\":\"TEST_NC_TICKET_ID') WHERE position = 5000"
    ],
    "deleted-row": ["DELETE FROM events WHERE position = 3000"],
    "deleted-first-row": ["DELETE FROM events WHERE position = 1"],
    "deleted-last-rows": ["DELETE FROM events WHERE position > 5990"],
    "reordered-rows": [
        "UPDATE events SET position = -1 WHERE position = 4",
        "UPDATE events SET position = 4 WHERE position = 5",
        "UPDATE events SET position = 5 WHERE position = -1",
    ],
    "row-at-position-zero": [copied_row(0, source=1)],
    "row-past-a-gap": [copied_row(7000, source=6000)],
    "prev-hash-edited": ["UPDATE events SET prev_hash = hash WHERE position = 1500"],
    "hash-edited": ["UPDATE events SET hash = prev_hash WHERE position = 2500"],
    "every-hash-edited": ["UPDATE events SET hash = 'x' || hash WHERE position > 100"],
    "outcome": ["UPDATE events SET outcome = 'duplicate' WHERE position = 4004"],
    "states": [
        "UPDATE events SET state_after = 'open' WHERE position IN"
        " (SELECT position FROM events WHERE action = 'RESOLVE' LIMIT 5 OFFSET 100)"
    ],
    "stream-version": [
        "UPDATE events SET stream_version = stream_version + 50 WHERE position = 2222"
    ],
    "delivery-states": [
        "UPDATE events SET state_before = 'closed' WHERE position IN"
        " (SELECT position FROM events WHERE action = 'identity_delivered' LIMIT 3 OFFSET 9)"
    ],
    "ticket-id-moved": ["UPDATE events SET ticket_id = '555555' WHERE position = 2777"],
    "tickets-row": ["UPDATE tickets SET state = 'open' WHERE ncentral_ticket_id = '100001'"],
    "tickets-row-missing": ["DELETE FROM tickets WHERE ncentral_ticket_id = '100003'"],
    "tickets-row-extra": [
        "INSERT INTO tickets (ncentral_ticket_id, external_ticket_id, state, title, details,"
        " custom_tags, created_at, updated_at, stream_version, last_position, last_accepted)"
        " SELECT '999999', 'PSA-999999', state, title, details, custom_tags,"
        " created_at, updated_at, stream_version, last_position, last_accepted"
        " FROM tickets WHERE ncentral_ticket_id = '100004'"
    ],
    "checkpoint-damaged": ["UPDATE checkpoints SET digest = 'x' WHERE position = 3000"],
    "checkpoint-gone": ["DELETE FROM checkpoints WHERE position = 2000"],
    "checkpoint-past-the-end": [
        "UPDATE checkpoints SET position = 9000 WHERE position = 6000",
    ],
}

PINNED = Path(__file__).with_name("verify_findings.json")
#: The one report changed on purpose since it was pinned: a row put at position 0 used to
#: pass, outside the positions verify read; it is now a finding of its own.
PASSING = {"lawful"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("verify-findings") / "log.db")


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_verify_finds_what_it_found_before_on_every_kind_of_damage(
    generated: Path, tmp_path: Path, damage: str
) -> None:
    pinned = json.loads(PINNED.read_text())[damage]
    copy = damaged(generated, tmp_path / "copy.db", damage)
    with closing(connect_sync(copy)) as db:
        for keep in (20, 200):
            alone = verify(db, keep=keep)
            together = verify(db, workers=2, parallel_from=0, keep=keep)
            assert as_json(alone) == pinned[str(keep)], (damage, keep)
            assert together == alone, (damage, keep)
    assert alone.ok == (damage in PASSING)


@pytest.fixture(scope="module")
def on_postgres(generated: Path, postgres: Postgres) -> Callable[[str], str]:
    """A copy of the generated log in a database of its own, with a damage done there."""

    def damaged_there(damage: str) -> str:
        url = copied_to_postgres(postgres, generated, checkpoint_every=1_000)
        with closing(backend_for(url).connect_sync(readonly=False)) as db:
            db.execute("DROP TRIGGER events_refuse_update ON events")
            db.execute("DROP TRIGGER events_refuse_delete ON events")
            for statement in DAMAGES[damage]:
                db.execute(statement.replace("char(0)", "chr(0)"))
        return url

    return damaged_there


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_verify_on_postgresql_finds_what_it_finds_on_sqlite(
    on_postgres: Callable[[str], str], damage: str
) -> None:
    """The same damage to the same log, copied into PostgreSQL: the same report, in one
    process and in workers reading one exported snapshot."""
    pinned = json.loads(PINNED.read_text())[damage]
    url = on_postgres(damage)
    backend = backend_for(url)
    with closing(backend.connect_sync()) as db, backend.snapshot(db):
        for keep in (20, 200):
            alone = verify(db, keep=keep)
            together = verify(db, workers=2, parallel_from=0, keep=keep)
            assert as_json(alone) == pinned[str(keep)], (damage, keep)
            assert together == alone, (damage, keep)


def generate(path: Path) -> Path:
    build_log(path, 6_000, check=True, checkpoint_every=1_000)
    return path


def damaged(source: Path, copy: Path, damage: str) -> Path:
    with sqlite3.connect(source) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with closing(sqlite3.connect(copy)) as db:
        db.executescript(
            ";".join(
                [
                    "DROP TRIGGER events_refuse_update",
                    "DROP TRIGGER events_refuse_delete",
                    *DAMAGES[damage],
                ]
            )
        )
    return copy


def as_json(report: Report) -> dict[str, object]:
    return {
        "events": report.events,
        "tickets": report.tickets,
        "findings": [[f.position, f.problem] for f in report.findings],
    }


def _pin(out: Path, folder: Path) -> None:
    """Write every damage's report, as the code on the path finds it, to `out`."""
    source = generate(folder / "log.db")
    found = {}
    for damage in DAMAGES:
        copy = damaged(source, folder / f"{damage}.db", damage)
        with closing(connect_sync(copy)) as db:
            found[damage] = {str(keep): as_json(verify(db, keep=keep)) for keep in (20, 200)}
    out.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    _pin(Path(sys.argv[1]), Path(sys.argv[2]))

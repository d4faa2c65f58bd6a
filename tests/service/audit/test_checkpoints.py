"""Checkpoints: time travel starts from the nearest one, and a bad or missing one only
costs time. Against a real server that writes them as it takes traffic, and a generated log.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import msgspec
import pytest

from bench.biglog import build_log
from service.audit import replay
from service.audit.replay import changes_between, rewind, state_at
from service.audit.verify import Finding, verify
from service.storage import checkpoints, events
from service.storage.backend import backend_for
from service.storage.postgres import events as postgres_events
from service.storage.sqlite import connect_sync
from statemachine.projection import Projection, Record, Ticket
from statemachine.ticket import State
from tests.support.backends import copied_to_postgres
from tests.support.harness import cli
from tests.support.live import Service, wait_for
from tests.support.postgres import Postgres


def by_rules(db: sqlite3.Connection, position: int) -> dict[str, Ticket]:
    """The tickets as the live path's own `Projection` derives them, checkpoints unused."""
    projection = Projection()
    for event in events.iter_after(db, 0, position):
        projection.apply(event)
    return projection.tickets()


def shown(tickets: dict[str, Ticket]) -> dict[str, tuple[object, ...]]:
    """What time travel shows of each ticket (the last accepted request is the writer's)."""
    return {
        tid: (
            t.external_ticket_id,
            t.state,
            t.title,
            t.details,
            t.custom_tags,
            t.created_at,
            t.updated_at,
        )
        for tid, t in tickets.items()
    }


def checkpoint_positions(path: Path) -> list[int]:
    with closing(connect_sync(path)) as db:
        return [c.position for c in checkpoints.every(db)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log written by a real server that checkpoints every 4 events: a checkpoint after
    each ticket, more of them than `FULL_EVERY`, so that a second full one is due."""
    db = tmp_path_factory.mktemp("checkpoints") / "ledger.db"
    service = Service(db, checkpoint_every="4").start()
    try:
        for n in range(1, checkpoints.FULL_EVERY + 3):
            made = len(checkpoint_positions(db)) if n > 1 else 0
            tid = str(700 + n)
            assert (
                service.ticket("CREATE", tid, customTags={"site": f"S{n % 2}"}).status_code == 200
            )
            assert service.ticket("UPDATE", tid, details=f"note {n}").status_code == 200
            if n % 2:
                psa = service.as_operator("GET", "/api/tickets?limit=1000").json()
                number = next(t for t in psa["tickets"] if t["ncentralTicketId"] == tid)
                psa_number = number["externalTicketId"]
                resolved = service.ticket("RESOLVE", tid, psaTicketNumber=psa_number, details="x")
                assert resolved.status_code == 200
                assert service.ticket("REOPEN", tid, psaTicketNumber=psa_number).status_code == 200
            service.ticket("UPDATE", tid, title=f"renamed {n}")
            # Each ticket adds at least five events: a multiple of four was passed.
            wait_for(
                lambda made=made: len(checkpoint_positions(db)) > made,
                timeout=30,
                what="a checkpoint",
            )
        assert service.as_operator("GET", "/api/tickets?as_of=9").status_code == 200
    finally:
        service.stop()
    return db


def test_the_server_checkpoints_every_n_events(served: Path) -> None:
    positions = checkpoint_positions(served)
    assert positions == sorted(set(positions))
    # One checkpoint a multiple of four at most; each taken just after the batch crossing it.
    assert len({p // 4 for p in positions}) == len(positions)
    assert "OK" in cli("verify", db=served).stdout


def test_time_travel_gives_the_rules_answer_at_every_position(served: Path) -> None:
    with closing(connect_sync(served)) as db:
        last = events.last_position(db)
        for position in range(last + 1):
            expected = shown(by_rules(db, position))
            assert shown(state_at(db, position)) == expected, position
            assert shown(rewind(db, position, from_genesis=True).tickets()) == expected


def copy_of(source: Path, tmp_path: Path, *statements: str) -> Path:
    copy = tmp_path / "copy.db"
    with sqlite3.connect(source) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with closing(sqlite3.connect(copy)) as db:
        db.executescript(";".join(statements))
    return copy


def test_a_damaged_or_missing_checkpoint_costs_time_not_truth(served: Path, tmp_path: Path) -> None:
    first, second, *_ = checkpoint_positions(served)
    damaged = copy_of(
        served,
        tmp_path,
        # The same length, one byte other: a flipped bit on disk, or an edit without the digest.
        "UPDATE checkpoints SET snapshot = CAST(substr(snapshot, 1, 20)"
        " || CASE substr(snapshot, 21, 1) WHEN X'00' THEN X'01' ELSE X'00' END"
        f" || substr(snapshot, 22) AS BLOB) WHERE position = {second}",
        f"DELETE FROM checkpoints WHERE position = {first}",
    )
    with closing(connect_sync(served)) as db, closing(connect_sync(damaged)) as bad:
        assert checkpoints.records_of(next(checkpoints.at_or_before(bad, second))) is None
        for position in range(events.last_position(db) + 1):
            assert shown(state_at(bad, position)) == shown(by_rules(db, position)), position
    found = cli("verify", db=damaged, check=False)
    assert found.returncode == 1
    assert f"FAILED at position {second}: checkpoint is damaged" in found.stdout


def test_on_postgresql_too_a_damaged_or_missing_checkpoint_costs_time_not_truth(
    served: Path, postgres: Postgres
) -> None:
    """PostgreSQL's reads walk back from the nearest checkpoint one at a time: past one
    whose snapshot fails its digest, and over a gap, to one that holds."""
    url = copied_to_postgres(postgres, served, checkpoint_every=4)
    with closing(backend_for(url).connect_sync(readonly=False)) as bad:
        first, second, *_ = [c.position for c in checkpoints.every(bad)]
        bad.execute(
            "UPDATE checkpoints SET snapshot = set_byte(snapshot, 9, get_byte(snapshot, 9) # 1)"
            " WHERE position = %s",
            (second,),
        )
        bad.execute("DELETE FROM checkpoints WHERE position = %s", (first,))
    with closing(connect_sync(served)) as db, closing(backend_for(url).connect_sync()) as bad:
        assert [c.position for c in checkpoints.at_or_before(bad, second)] == [second]
        assert checkpoints.records_of(next(checkpoints.at_or_before(bad, second))) is None
        for position in range(events.last_position(db) + 1):
            assert shown(state_at(bad, position)) == shown(by_rules(db, position)), position
    found = cli("verify", db=url, check=False)
    assert f"FAILED at position {second}: checkpoint is damaged" in found.stdout


def nine_records() -> dict[str, Record]:
    return {
        str(n): Record(f"PSA-{n}", State.OPEN, f"disk {n}", "", {}, "t0", "t1") for n in range(9)
    }


def test_a_snapshot_that_unpacks_and_decodes_but_is_not_the_one_digested_is_refused() -> None:
    records = nine_records()
    sound = checkpoints.snapshot_of(100, records)
    records["7"].title = "edited"
    edited = checkpoints.snapshot_of(100, records)._replace(digest=sound.digest)
    assert checkpoints.records_of(sound) is not None
    assert checkpoints.raw_records_of(edited) is None
    assert checkpoints.records_of(edited) is None


def test_checkpoints_stored_uncompressed_by_earlier_versions_are_still_read() -> None:
    """Until this round a snapshot was stored as its MessagePack document."""
    records = nine_records()
    document = msgspec.msgpack.encode(records)
    stored = checkpoints.Checkpoint(100, 9, hashlib.sha256(document).hexdigest(), document)
    assert checkpoints.records_of(stored) == records
    assert checkpoints.records_of(checkpoints.snapshot_of(100, records)) == records
    assert len(checkpoints.snapshot_of(100, records).snapshot) < len(document)


def test_verify_catches_a_checkpoint_that_lies_with_a_good_digest(
    served: Path, tmp_path: Path
) -> None:
    """A checkpoint rewritten with its digest is believed by time travel: verify finds it."""
    position = checkpoint_positions(served)[-1]
    with closing(connect_sync(served)) as db:
        records = checkpoints.records_of(next(checkpoints.at_or_before(db, position)))
    assert records is not None
    records[next(iter(records))].title = "forged"
    forged = checkpoints.snapshot_of(position, records)
    copy = copy_of(served, tmp_path)
    with closing(sqlite3.connect(copy)) as db:
        db.execute(
            "UPDATE checkpoints SET digest = ?, snapshot = ? WHERE position = ?",
            (forged.digest, forged.snapshot, position),
        )
        db.commit()
    found = cli("verify", db=copy, check=False)
    assert found.returncode == 1
    assert f"at position {position}: checkpoint differs from the tickets replayed" in found.stdout


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("generated") / "log.db"
    build_log(path, 6_000, check=True, checkpoint_every=1_000)
    return path


def test_the_checkpoint_command_stores_one_at_the_end_of_the_log(
    served: Path, tmp_path: Path
) -> None:
    bare = copy_of(served, tmp_path, "DELETE FROM checkpoints")
    with closing(connect_sync(bare)) as db:
        last, tickets = events.last_position(db), len(state_at(db, 2**62))
    made = cli("checkpoint", db=bare)
    assert f"checkpoint: stored at position {last}: {tickets} tickets" in made.stdout
    assert checkpoint_positions(bare) == [last]
    assert "already stored" in cli("checkpoint", db=bare).stdout
    assert "OK" in cli("verify", db=bare).stdout


def test_the_services_checkpoint_process_loads_no_shell_http_or_psycopg(
    served: Path, tmp_path: Path
) -> None:
    """The service runs it every N events, every few seconds under N-central's load: what
    it loads at each start is CPU taken from the requests (0.25 s with the whole shell)."""
    bare = copy_of(served, tmp_path, "DELETE FROM checkpoints")
    probe = (
        "import sys; from service.shell.checkpoint import main;"
        " status = main(['--db', sys.argv[1]]);"
        " print(status, sorted(m for m in sys.modules if m.split('.')[0] in sys.argv[2:]))"
    )
    heavy = ["psycopg", "click", "litestar", "aiosqlite", "uvicorn"]
    done = subprocess.run(
        [sys.executable, "-c", probe, str(bare), *heavy],
        input="\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    made, loaded = done.stdout.splitlines()
    assert made.startswith("checkpoint: stored at position")
    assert loaded == "0 []"
    assert len(checkpoint_positions(bare)) == 1


def test_the_checkpoint_process_answers_each_request_with_one_line(
    served: Path, tmp_path: Path
) -> None:
    """What the service reads and logs: a checkpoint, the same one already stored, and why
    none could be made, each on one line, for as long as it is asked."""
    bare = copy_of(served, tmp_path, "DELETE FROM checkpoints")
    with closing(connect_sync(bare)) as db:
        last = events.last_position(db)
    answers = [
        subprocess.run(
            [sys.executable, "-m", "service.shell.checkpoint", "--db", str(db)],
            input="\n\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        for db in (bare, tmp_path / "nowhere" / "ledger.db")
    ]
    assert [done.returncode for done in answers] == [0, 0]
    made, again = answers[0].stdout.splitlines()
    assert made.startswith(f"checkpoint: stored at position {last}:")
    assert again.startswith(f"checkpoint: already stored at position {last}:")
    refused = answers[1].stdout.splitlines()
    assert len(refused) == 2
    assert all(line.startswith("checkpoint not made: cannot read") for line in refused)


def test_the_service_keeps_its_checkpoint_process_from_a_delta_to_the_next(
    tmp_path: Path,
) -> None:
    """A process started for each checkpoint cost more CPU than the checkpoint: the one that
    made a delta makes the next, and the one that made a full checkpoint is ended, with
    the memory that held every ticket."""
    db = tmp_path / "ledger.db"
    service = Service(db, checkpoint_every="4").start()
    kept: list[int] = []
    try:
        for n in range(4):
            made = len(checkpoint_positions(db))
            write_a_ticket(service, str(800 + n))
            wait_for(lambda made=made: len(checkpoint_positions(db)) > made, what="a checkpoint")
            if kinds(db)[-1] == 0:
                wait_for(
                    lambda: checkpoint_processes(service.pid) == [],
                    what="the process that made a full checkpoint to end",
                )
            else:
                kept += wait_for(
                    lambda: checkpoint_processes(service.pid), what="the process kept after a delta"
                )
                # Named in its environment: `ps` would show a URL's password to every user.
                assert str(db).encode() not in Path(f"/proc/{kept[-1]}/cmdline").read_bytes()
    finally:
        service.stop()
    assert kinds(db)[0] == 0 and len(kept) >= 2
    assert len(set(kept)) == 1, "a new process for each delta"
    wait_for(
        lambda: not Path(f"/proc/{kept[0]}").exists(), what="no checkpoint process past the service"
    )


def test_a_checkpoint_process_gone_meanwhile_is_replaced_in_time(tmp_path: Path) -> None:
    """Killed while it waited (by the kernel short of memory, say): the next checkpoint is
    still made at its multiple, by a new process, and nothing is logged as not made."""
    db = tmp_path / "ledger.db"
    service = Service(db, checkpoint_every="4").start()
    try:
        # A full checkpoint, then a delta, whose process is kept.
        for n in range(3):
            made = len(checkpoint_positions(db))
            if n == 2:
                gone = wait_for(lambda: checkpoint_processes(service.pid))[0]
                os.kill(gone, signal.SIGKILL)
                wait_for(lambda: checkpoint_processes(service.pid) == [], what="it to be gone")
            write_a_ticket(service, str(900 + n))
            wait_for(lambda made=made: len(checkpoint_positions(db)) > made, what="a checkpoint")
        assert wait_for(lambda: checkpoint_processes(service.pid)) != [gone]
    finally:
        service.stop()
    assert "not made" not in service.log.read_text()


def write_a_ticket(service: Service, ticket_id: str) -> None:
    """A CREATE and three UPDATEs: enough events to pass a multiple of four."""
    assert service.ticket("CREATE", ticket_id).status_code == 200
    for note in range(3):
        assert service.ticket("UPDATE", ticket_id, details=f"note {note}").status_code == 200


def checkpoint_processes(parent: int) -> list[int]:
    """The checkpoint processes that `parent` runs, by their ids."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == parent and b"service.shell.checkpoint" in command:
            found.append(int(stat.parent.name))
    return found


def test_a_generated_log_rewinds_alike_from_checkpoints_and_genesis(generated: Path) -> None:
    assert checkpoint_positions(generated) == list(range(1_000, 6_001, 1_000))
    with closing(connect_sync(generated)) as db:
        for position in (0, 999, 1_000, 1_001, 2_500, 4_999, 6_000):
            expected = shown(by_rules(db, position))
            assert shown(state_at(db, position)) == expected, position


@pytest.mark.parametrize(
    "statements",
    [
        [],
        ["UPDATE events SET payload = replace(payload, '98%', '9%') WHERE position = 2100"],
        ["DELETE FROM events WHERE position = 3000"],
        ["UPDATE events SET outcome = 'duplicate' WHERE position = 4004"],
        ["UPDATE tickets SET state = 'open' WHERE ncentral_ticket_id = '100001'"],
    ],
    ids=["lawful", "edited", "deleted", "outcome", "tickets-row"],
)
def test_verify_in_worker_processes_finds_what_one_process_finds(
    generated: Path, tmp_path: Path, statements: list[str]
) -> None:
    copy = copy_of(
        generated,
        tmp_path,
        "DROP TRIGGER events_refuse_update",
        "DROP TRIGGER events_refuse_delete",
        *statements,
    )
    with closing(connect_sync(copy)) as db:
        alone = verify(db)
        # Three parts: the middle one has both bounds, the others one each.
        together = [verify(db, workers=workers, parallel_from=0) for workers in (2, 3)]
    assert together == [alone, alone]
    assert alone.ok == (not statements)


def test_diff_gives_the_rules_answer_from_checkpoints_or_not(served: Path, tmp_path: Path) -> None:
    bare = copy_of(served, tmp_path, "DELETE FROM checkpoints")
    with closing(connect_sync(served)) as db, closing(connect_sync(bare)) as without:
        last = events.last_position(db)
        for first, second in [(0, last), (3, 9), (5, 6), (9, 9), (2, last - 1), (13, 27)]:

            def records(position: int) -> dict[str, Record]:
                projection = Projection()
                for event in events.iter_after(db, 0, position):
                    projection.apply(event)
                return projection.records()

            expected = replay.compare(records(first), records(second))
            assert expected or first == second or second < 5, (first, second)
            assert changes_between(db, first, second) == expected, (first, second)
            assert changes_between(without, first, second) == expected, (first, second)


def kinds(path: Path) -> list[int]:
    """Each checkpoint's base, in position order: 0 for a full one."""
    with closing(connect_sync(path)) as db:
        held = [checkpoints.raw_records_of(c) for c in checkpoints.every(db)]
    return [h.base for h in held if h is not None]


def test_the_server_makes_deltas_and_a_full_checkpoint_every_few(served: Path) -> None:
    positions, bases = checkpoint_positions(served), kinds(served)
    assert len(bases) == len(positions) >= checkpoints.FULL_EVERY + 1
    assert bases[0] == 0
    # Each delta is on the checkpoint just before it; a full one at least every FULL_EVERY.
    for n, base in enumerate(bases[1:], start=1):
        assert base in (0, positions[n - 1])
    chain = 0
    for base in bases:
        chain = chain + 1 if base else 1
        assert chain <= checkpoints.FULL_EVERY


def test_a_delta_holds_only_the_tickets_that_changed(tmp_path: Path) -> None:
    """Waves of 100 tickets: 500 events touch one wave, so a delta holds 100 of 600."""
    path = tmp_path / "waves.db"
    build_log(path, 6_000, wave=100, check=True, checkpoint_every=500)
    assert kinds(path) == [0, *range(500, 5_000, 500), 0, 5500]
    with closing(connect_sync(path)) as db:
        sizes = {c.position: c.tickets for c in checkpoints.every(db)}
        assert sizes[1_000] == 100 and sizes[5_500] == 600 and sizes[6_000] == 100
        for position in (999, 1_000, 2_750, 4_999, 6_000):
            assert shown(state_at(db, position)) == shown(by_rules(db, position)), position
        assert verify(db).ok


def test_a_broken_chain_of_deltas_costs_time_not_truth(generated: Path, tmp_path: Path) -> None:
    """A missing or damaged link makes time travel start from an earlier sound chain (or
    genesis); verify names the delta that lost its base."""
    broken = copy_of(
        generated,
        tmp_path,
        "DELETE FROM checkpoints WHERE position = 3000",
        "UPDATE checkpoints SET digest = 'x' || substr(digest, 2) WHERE position = 6000",
    )
    with closing(connect_sync(generated)) as db, closing(connect_sync(broken)) as bad:
        for position in (2_999, 3_000, 4_500, 5_999, 6_000):
            assert shown(state_at(bad, position)) == shown(by_rules(db, position)), position
        found = verify(bad)
    assert (
        Finding(4_000, "checkpoint is a delta on position 3000, not on the sound one before it")
        in found.findings
    )
    assert (
        Finding(6_000, "checkpoint is damaged (its snapshot does not match its digest)")
        in found.findings
    )


def test_verify_catches_a_delta_that_leaves_out_a_changed_ticket(
    generated: Path, tmp_path: Path
) -> None:
    """Time travel believes a delta with a good digest; verify checks it holds every
    ticket whose record changed since its base."""
    with closing(connect_sync(generated)) as db:
        delta = checkpoints.at(db, 2_000)
        assert delta is not None
        records = checkpoints.records_of(delta)
    assert records is not None
    del records[next(iter(records))]
    forged = checkpoints.delta_of(2_000, 1_000, records)
    copy = copy_of(generated, tmp_path)
    with closing(sqlite3.connect(copy)) as db:
        db.execute(
            "UPDATE checkpoints SET tickets = ?, digest = ?, snapshot = ? WHERE position = 2000",
            (forged.tickets, forged.digest, forged.snapshot),
        )
        db.commit()
    with closing(connect_sync(copy)) as db:
        for workers in (1, 2):
            report = verify(db, workers=workers, parallel_from=0)
            assert report.findings[0] == Finding(
                2_000, "checkpoint differs from the tickets replayed to its position"
            )


def test_deltas_on_both_backends_rewind_to_the_rules_answer(log_db: Path | str) -> None:
    """The checkpoint command's deltas, on SQLite and on PostgreSQL: a delta holds the
    tickets with events since its base, and time travel through it gives the rules' answer."""
    service = Service(log_db).start()
    try:
        for n in range(3):
            tid = str(900 + n)
            assert service.ticket("CREATE", tid, customTags={"n": str(n)}).status_code == 200
            assert "tickets" in cli("checkpoint", db=log_db).stdout
        assert service.ticket("UPDATE", "900", details="later").status_code == 200
        made = cli("checkpoint", db=log_db).stdout
    finally:
        service.stop()
    assert "1 tickets" in made and "changed since position" in made, made
    with closing(backend_for(log_db).connect_sync()) as db:
        bases = [h.base for c in checkpoints.every(db) if (h := checkpoints.raw_records_of(c))]
        positions = [c.position for c in checkpoints.every(db)]
        assert bases == [0, *positions[:-1]]
        last = events.last_position(db)
        for position in range(last + 1):
            assert shown(state_at(db, position)) == shown(by_rules(db, position)), position
        assert verify(db).ok
        # verify's parts: two ranges of tickets, each event in exactly one.
        ranges = events.ticket_ranges(db, 2)
        split = [list(events.rows_for_rules(db, last, tickets)) for tickets in ranges]
        assert len(split) == 2 and all(split)
        assert sorted(row[0] for part in split for row in part) == list(range(1, last + 1))


def test_each_ticket_falls_in_one_part_even_with_a_nul_in_its_id(
    generated: Path, tmp_path: Path
) -> None:
    """The parts are ranges of ticket ids, compared as SQLite compares text (byte by
    byte, past a NUL that an old log's id may hold): SQL and `TicketRange.holds` put every
    ticket in the same one part, the parts hold about as many events each, and verify in
    workers finds what one process finds."""
    nul_id = "'100001' || char(0) || 'é'"
    copy = copy_of(
        generated,
        tmp_path,
        "DROP TRIGGER events_refuse_update",
        f"UPDATE events SET ticket_id = {nul_id} WHERE ticket_id = '100001'",
        f"UPDATE tickets SET ncentral_ticket_id = {nul_id} WHERE ncentral_ticket_id = '100001'",
    )
    with closing(connect_sync(copy)) as db:
        for parts in (2, 3):
            ranges = events.ticket_ranges(db, parts)
            split = {tickets: list(events.rows_for_rules(db, 6_000, tickets)) for tickets in ranges}
            positions = sorted(row[0] for found in split.values() for row in found)
            assert positions == list(range(1, 6_001))
            assert all(tickets.holds(row[1]) for tickets, found in split.items() for row in found)
            ids = {row[1] for found in split.values() for row in found}
            assert "100001\x00é" in ids
            assert all(sum(tickets.holds(t) for tickets in ranges) == 1 for t in ids)
            assert all(len(found) <= 2 * 6_000 // parts for found in split.values())
        alone = verify(db, keep=1_000)
        assert verify(db, workers=2, parallel_from=0, keep=1_000) == alone


@pytest.mark.parametrize("sampled_pages", [500, 100])
def test_on_postgresql_the_parts_are_cut_from_a_sample_of_the_pages(
    generated: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch, sampled_pages: int
) -> None:
    """Every page of a small log, or a sample of a big one's (here a third of its 333 pages):
    either way every event falls in exactly one part, the parts hold about as many events
    each, and verify in workers finds what one process finds."""
    monkeypatch.setattr(postgres_events, "_SAMPLED_PAGES", sampled_pages)
    url = copied_to_postgres(postgres, generated)
    with closing(backend_for(url).connect_sync()) as db:
        pages = db.execute(
            "SELECT pg_relation_size('events') / current_setting('block_size')::int AS n"
        ).fetchone()["n"]
        assert (pages > sampled_pages) == (sampled_pages == 100), pages
        for parts in (2, 3):
            ranges = events.ticket_ranges(db, parts)
            assert len(ranges) == parts
            split = {tickets: list(events.rows_for_rules(db, 6_000, tickets)) for tickets in ranges}
            positions = sorted(row[0] for found in split.values() for row in found)
            assert positions == list(range(1, 6_001))
            assert all(tickets.holds(row[1]) for tickets, found in split.items() for row in found)
            assert all(len(found) <= 1.25 * 6_000 // parts for found in split.values())
    with closing(backend_for(url).connect_sync()) as db, backend_for(url).snapshot(db):
        assert verify(db, workers=2, parallel_from=0) == verify(db)

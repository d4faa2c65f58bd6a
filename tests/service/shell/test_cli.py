"""The shell tools as subprocesses on real logs (a file, then a PostgreSQL database), one of
them served while they read."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path

import msgspec
import psycopg
import pytest

from service.storage.backend import backend_for
from tests.support.harness import PSA_LEDGER, Server, clean_environment, cli, write_log
from tests.support.live import read
from tests.support.postgres import Postgres


@pytest.fixture(scope="module")
def history(server: Server) -> Server:
    server.send(action="CREATE", ncentralTicketId="7", title="CPU", details="98%")
    server.send(action="UPDATE", ncentralTicketId="7", details="99%")
    server.send(action="RESOLVE", ncentralTicketId="7")
    server.send(action="UPDATE", ncentralTicketId="7", details="too late")
    server.send(action="REOPEN", ncentralTicketId="7")
    server.send(action="CREATE", ncentralTicketId="8", title="Ping", details="lost")
    return server


def jsonl(text: str) -> list[dict[str, object]]:
    return [msgspec.json.decode(line) for line in text.splitlines()]


def test_events_filters_and_formats_while_serving(history: Server) -> None:
    rows = jsonl(cli("events", "--ticket", "7", "--format", "jsonl", db=history.db).stdout)
    assert [r["action"] for r in rows] == [
        "CREATE", "identity_delivered", "UPDATE", "RESOLVE", "UPDATE", "REOPEN",
    ]  # fmt: skip
    rejected = cli("events", "--outcome", "rejected", "--format", "json", db=history.db)
    assert [(r["action"], r["state_before"]) for r in msgspec.json.decode(rejected.stdout)] == [
        ("UPDATE", "closed")
    ]
    table = cli("events", "--action", "reopen", db=history.db).stdout
    assert "REOPEN" in table and "closed" in table and "reopened" in table
    bad = cli("events", "--since", "whenever", db=history.db, check=False)
    assert bad.returncode != 0 and "--since" in bad.stderr


def test_export_streams_jsonl_and_csv(history: Server) -> None:
    everything = jsonl(cli("export", "--format", "jsonl", db=history.db).stdout)
    assert [r["position"] for r in everything] == list(range(1, len(everything) + 1))
    assert everything[0]["payload"] == {
        "action": "CREATE", "ncentralTicketId": "7", "title": "CPU", "details": "98%",
    }  # fmt: skip
    csv_text = cli("export", "--format", "csv", "--ticket", "8", db=history.db).stdout
    header, *lines = csv_text.splitlines()
    assert header.startswith("position,ticket_id,")
    assert len(lines) == 2


def test_replay_window_shows_each_step(history: Server) -> None:
    out = cli("replay", "--from", "3", "--to", "5", "--format", "json", db=history.db).stdout
    steps = msgspec.json.decode(out)
    assert [(s["action"], s["outcome"], s["state_before"], s["state_after"]) for s in steps] == [
        ("UPDATE", "accepted", "open", "open"),
        ("RESOLVE", "accepted", "open", "closed"),
        ("UPDATE", "rejected", "closed", "closed"),
    ]
    markdown = cli("replay", "--from", "1", "--ticket", "8", "--format", "markdown", db=history.db)
    assert markdown.stdout.startswith("| position |")
    assert "| 8 | PSA-" in markdown.stdout


def test_replay_at_agrees_with_the_live_state_then(server: Server, history: Server) -> None:
    live = server.operator.get("/api/tickets").json()["tickets"]
    moment = server.operator.get("/api/events", params={"order": "desc", "limit": 1}).json()
    then = moment["events"][0]["recorded_at"]
    server.send(action="RESOLVE", ncentralTicketId="7")
    server.send(action="UPDATE", ncentralTicketId="8", title="Ping again")
    replayed = msgspec.json.decode(
        cli("replay", "--at", then, "--format", "json", db=server.db).stdout
    )
    fields = ("externalTicketId", "state", "title", "details", "customTags", "updatedAt")
    assert [{f: t[f] for f in fields} for t in replayed["tickets"]] == [
        {f: t[f] for f in fields} for t in live
    ]
    changes = msgspec.json.decode(
        cli(
            "diff", then, str(replayed["asOfPosition"] + 99), "--format", "json", db=server.db
        ).stdout
    )
    assert {(c["ticket_id"], c["field"], c["after"]) for c in changes} == {
        ("7", "state", "closed"),
        ("8", "title", "Ping again"),
    }


def test_verify_passes_on_the_live_log(history: Server) -> None:
    done = cli("verify", "--every", "3", db=history.db)
    assert "OK" in done.stdout
    assert "verify: 3/" in done.stderr


def tampered(
    source: Path | str, tmp_path: Path, *statements: str, request: pytest.FixtureRequest
) -> Path | str:
    """A copy of the log with the append-only triggers dropped, then `statements` run."""
    if isinstance(source, str):
        return _tampered_postgres(source, request.getfixturevalue("postgres"), statements)
    copy = tmp_path / "tampered.db"
    with sqlite3.connect(source) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    db = sqlite3.connect(copy)
    db.executescript(
        "DROP TRIGGER events_refuse_update; DROP TRIGGER events_refuse_delete;"
        + ";".join(statements)
    )
    db.close()
    return copy


_COLUMNS = (
    "position, ticket_id, stream_version, action, outcome, state_before, state_after,"
    " recorded_at, request_id, actor, payload, response, schema_version, prev_hash, hash"
)
#: The first row again, at position 0 and under a stream version of its own.
_BELOW_THE_FIRST = _COLUMNS.replace("position,", "0,", 1).replace(
    "stream_version", "stream_version + 100"
)


def _tampered_postgres(source: str, server: Postgres, statements: tuple[str, ...]) -> str:
    copy = server.create_database()
    backend_for(copy).connect_sync(readonly=False).close()  # the schema
    with psycopg.connect(copy, autocommit=True) as db:
        for table in ("events", "tickets", "callbacks"):
            rows = read(source, f"SELECT * FROM {table}")
            if rows:
                columns = ", ".join(rows[0])
                marks = ", ".join("%s" for _ in rows[0])
                with db.cursor() as cursor:
                    cursor.executemany(
                        f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                        [tuple(row.values()) for row in rows],
                    )
        db.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_update")
        db.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_delete")
        for statement in statements:
            db.execute(statement)
    return copy


@pytest.mark.parametrize(
    ("statements", "position"),
    [
        (
            ["UPDATE events SET payload = replace(payload, '99%', '9%') WHERE position = 3"],
            3,
        ),
        (["DELETE FROM events WHERE position = 4"], 5),
        (
            [
                "UPDATE events SET position = -1 WHERE position = 4",
                "UPDATE events SET position = 4 WHERE position = 5",
                "UPDATE events SET position = 5 WHERE position = -1",
            ],
            4,
        ),
        (
            [
                f"INSERT INTO events ({_COLUMNS})"
                f" SELECT {_BELOW_THE_FIRST} FROM events WHERE position = 1"
            ],
            0,
        ),
    ],
    ids=["edited-payload", "deleted-row", "reordered-rows", "row-below-the-first"],
)
def test_verify_names_the_first_bad_position(
    history: Server,
    tmp_path: Path,
    statements: list[str],
    position: int,
    request: pytest.FixtureRequest,
) -> None:
    copy = tampered(history.db, tmp_path, *statements, request=request)
    done = cli("verify", db=copy, check=False)
    assert done.returncode != 0
    assert f"FAILED at position {position}:" in done.stdout


def test_verify_catches_a_projection_row_that_lies(
    history: Server, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    copy = tampered(history.db, tmp_path, "UPDATE tickets SET state = 'open'", request=request)
    done = cli("verify", db=copy, check=False)
    assert done.returncode != 0
    assert "tickets row" in done.stdout


@pytest.mark.parametrize("tool", [("export",), ("events", "--format", "jsonl")], ids=str)
def test_a_reader_that_stops_early_stops_the_tool_quietly(
    log_db: Path | str, tool: tuple[str, ...]
) -> None:
    """`psa-ledger export | head`: the tool ends at the closed pipe with the status a shell
    gives `cat` there (128 + SIGPIPE), its usual line in the log, and no warning or
    traceback."""
    details = "x" * 2_000  # a hundred events: far more than a pipe's buffer holds
    write_log(
        log_db,
        [
            (
                timedelta(seconds=n),
                {"action": "CREATE", "ncentralTicketId": str(n), "details": details},
            )
            for n in range(100)
        ],
    )
    env = clean_environment()
    command = [PSA_LEDGER, *tool, "--db", str(log_db)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as run:
        assert run.stdout is not None and run.stderr is not None
        first = msgspec.json.decode(run.stdout.readline())
        run.stdout.close()
        said = run.stderr.read().decode()
        status = run.wait(timeout=60)

    assert first["position"] == 1
    assert status == 141, said
    assert f"info psa_ledger.cli {tool[0]} exited 141" in said
    assert "Traceback" not in said and "warning" not in said


def test_tools_read_a_copy_not_a_missing_file(tmp_path: Path) -> None:
    done = cli("verify", db=tmp_path / "absent.db", check=False)
    assert done.returncode != 0 and "no event log" in done.stderr
    assert not (tmp_path / "absent.db").exists()


def test_terminal_tables_do_not_pass_control_characters_through(tmp_path: Path) -> None:
    db = tmp_path / "escape.db"
    body = {"action": "CREATE", "ncentralTicketId": "1", "title": "\x1b[2Jgone", "details": "d"}
    write_log(db, [(timedelta(0), body)])
    shown = cli("replay", "--at", "2999-01-01T00:00:00Z", db=db).stdout
    assert "\x1b" not in shown
    assert "\\x1b[2Jgone" in shown


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("replay", "--at", "²"), "--at"),
        (("replay", "--at", "9" * 5000), "--at"),
        (("replay", "--from", "\N{ARABIC-INDIC DIGIT ONE}", "--to", "3"), "--from"),
        (("replay", "--from", "1", "--to", "³"), "--to"),
        (("diff", "²", "1"), "FIRST"),
        (("diff", "1", "9" * 5000), "SECOND"),
        (("verify", "--every", "\N{ARABIC-INDIC DIGIT ONE}"), "--every"),
        (("verify", "--every", "0"), "--every"),
    ],
    ids=["at-²", "at-5000-digits", "from-arabic-indic", "to-³", "first", "second", "every", "0"],
)
def test_numbers_on_the_command_line_are_ascii_digits(
    history: Server, args: tuple[str, ...], named: str
) -> None:
    done = cli(*args, db=history.db, check=False)

    assert done.returncode == 2, done.stdout
    assert named in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr) < 1000, "a 5,000-digit value is not echoed whole"


#: Ticket IDs a spreadsheet would run as formulas, and one it would not.
_FORMULAS = ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "7"]


def test_csv_export_neutralises_formulas_and_raw_keeps_every_byte(tmp_path: Path) -> None:
    db = tmp_path / "formulas.db"
    write_log(
        db,
        [
            (timedelta(seconds=n), {"action": "CREATE", "ncentralTicketId": ticket_id})
            for n, ticket_id in enumerate(_FORMULAS)
        ],
    )
    logged = [row["ticket_id"] for row in jsonl(cli("export", db=db).stdout)]
    assert logged == _FORMULAS

    safe = _csv_rows(db)
    raw = _csv_rows(db, "--raw")

    assert [r["ticket_id"] for r in safe] == [
        "'=1+2", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "7",
    ]  # fmt: skip
    assert [r["ticket_id"] for r in raw] == logged
    assert [r["payload"] for r in raw] == [
        msgspec.json.encode(r["payload"]).decode() for r in jsonl(cli("export", db=db).stdout)
    ]


def _csv_rows(db: Path, *flags: str) -> list[dict[str, str]]:
    """`export --format csv` read as bytes: text mode would turn a CR in a cell into LF."""
    done = subprocess.run(
        [PSA_LEDGER, "export", "--format", "csv", *flags, "--db", str(db)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return list(csv.DictReader(io.StringIO(done.stdout.decode(), newline="")))

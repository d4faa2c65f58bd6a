"""customTags are stored key for key, value for value, whatever characters they hold
(issue 7, item 11): `ticket_tags`, which tag search reads, once cut keys at a NUL, so
{"a\\u0000x": "1", "a\\u0000y": "2"} left the single row ('a', '2').
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from service.storage import sqlite
from tests.support.fuzzing import examples
from tests.support.harness import Server

NUL_KEYS = {"a\x00x": "1", "a\x00y": "2"}


def tickets_tagged(server: Server, tag: str) -> list[str]:
    response = server.operator.get("/api/tickets", params={"tag": tag})
    assert response.status_code == 200, response.text
    return [t["ncentralTicketId"] for t in response.json()["tickets"]]


def test_tag_keys_with_nul_are_each_found_through_the_api(server: Server) -> None:
    create = {"action": "CREATE", "title": "Disk", "details": "C: 1% free"}
    assert server.send(ncentralTicketId="5101", customTags=NUL_KEYS, **create).status_code == 200
    assert server.send(ncentralTicketId="5102", customTags={"a": "2"}, **create).status_code == 200
    assert tickets_tagged(server, "a\x00x:1") == ["5101"]
    assert tickets_tagged(server, "a\x00y:2") == ["5101"]
    assert tickets_tagged(server, "a:2") == ["5102"], "a NUL key is not its prefix"
    server.send(action="UPDATE", ncentralTicketId="5101", customTags={"a\x00y": "v\x00w"})
    assert tickets_tagged(server, "a\x00y:v\x00w") == ["5101"]
    assert tickets_tagged(server, "a\x00x:1") == []


def ticket_tags(db: sqlite3.Connection) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for ticket_id, key, value in db.execute("SELECT * FROM ticket_tags"):
        found.setdefault(ticket_id, {})[key] = value
    return found


def insert_ticket(db: sqlite3.Connection, ticket_id: str, tags: dict[str, str]) -> None:
    row = (ticket_id, f"PSA-{ticket_id}", "open", "t", "d", msgspec.json.encode(tags).decode())
    db.execute(
        "INSERT OR REPLACE INTO tickets VALUES (?, ?, ?, ?, ?, ?, 'T', 'T', 1, 1, NULL)", row
    )


#: What could fool a textual stand-in for NUL: NUL itself, backslashes (so "\\u0000" as
#: text), the private-use character the trigger uses as its marker, and what follows it.
tricky = st.text(st.sampled_from(["\x00", "\\", "u", "0", "\ue000", "m", "b", '"', "a", "é"]))


@pytest.mark.hypothesis
def test_the_tags_table_holds_each_key_and_value_as_sent(tmp_path: Path) -> None:
    with closing(sqlite.connect_sync(tmp_path / "tags.db", readonly=False)) as db:
        insert_ticket(db, "1", {"stale": "tag"})

        @settings(max_examples=examples(300), deadline=None)
        @example({"\\u0000": "\ue000b", "\ue0000": "\\\x00", "\ue000\ue000m": "\\\\u0000"})
        @given(st.dictionaries(tricky, tricky, max_size=6) | st.dictionaries(st.text(), st.text()))
        def check(tags: dict[str, str]) -> None:
            insert_ticket(db, "1", tags)
            assert ticket_tags(db).get("1", {}) == tags

        check()


#: The trigger as migration 2 shipped it, in a file of version 3 (without later tables
#: and triggers).
OLD_TRIGGER = """
    DROP TABLE checkpoints;
    DROP TRIGGER tickets_tags_change;
    DROP TRIGGER tickets_tags_follow;
    CREATE TRIGGER tickets_tags_follow AFTER INSERT ON tickets BEGIN
        DELETE FROM ticket_tags WHERE ncentral_ticket_id = NEW.ncentral_ticket_id;
        INSERT INTO ticket_tags SELECT NEW.ncentral_ticket_id, key, value
            FROM json_each(NEW.custom_tags);
    END;
    PRAGMA user_version = 3;
"""


def test_an_older_file_has_its_tags_table_rebuilt_faithfully(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite.connect_sync(path, readonly=False)) as db:
        db.executescript(OLD_TRIGGER)
        insert_ticket(db, "1", NUL_KEYS)
        insert_ticket(db, "2", {"site": "Leeds"})
        assert ticket_tags(db)["1"] == {"a": "2"}, "the old trigger cut keys at the NUL"
    sqlite.connect_sync(path, readonly=False).close()
    with closing(sqlite.connect_sync(path)) as db:
        assert ticket_tags(db) == {"1": NUL_KEYS, "2": {"site": "Leeds"}}

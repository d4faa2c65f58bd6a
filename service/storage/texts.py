"""The log reads the console's text index is kept from: tickets' texts, and who moved.

The index (`storage.textindex`) lives outside the log, so it reads the log like any
reader: every ticket's title and details in key order to build it, then, to bring it to
a later head, the tickets that events after its bookmark touched (a walk of the
primary key) and those tickets' texts by key. Each read has its PostgreSQL twin, which
hands back the texts as stored there (shielded), because the list's filter there
searches the stored text.
"""

from __future__ import annotations

import json
import sqlite3

from service.storage.dialects import portable
from service.storage.sqlite import plain_cursor

__all__ = [
    "explain_texts_after",
    "explain_texts_of",
    "explain_touched",
    "needle",
    "texts_after",
    "texts_of",
    "touched",
]

#: A ticket's key, title and details as the list's text filter searches them (both None
#: when together longer than asked), its last activity (the list's order), and the
#: position of the last event that changed it.
Text = tuple[str, str | None, str | None, str, int]


@portable
def needle(db: sqlite3.Connection, text: str) -> str:
    """What the list's text filter looks for in a title or details: `text` lowered (the
    filter compares it with SQLite's `lower` of the stored text)."""
    return text.lower()


@portable
def texts_after(db: sqlite3.Connection, key: str | None, limit: int, longest: int) -> list[Text]:
    """Up to `limit` tickets' texts, in key order, after the ticket `key` (None: the first);
    none of a ticket whose title and details are longer than `longest` characters."""
    cursor = plain_cursor(db)
    if key is None:
        return cursor.execute(_FIRST_TEXTS, (longest, longest, limit)).fetchall()
    return cursor.execute(_TEXTS_AFTER, (longest, longest, key, limit)).fetchall()


@portable
def texts_of(db: sqlite3.Connection, keys: list[str], longest: int) -> list[Text]:
    """The texts of the tickets `keys` (those that exist), looked up by key; as
    `texts_after`, none longer than `longest`."""
    cursor = plain_cursor(db)
    return cursor.execute(_TEXTS_OF, (longest, longest, _json_list(keys))).fetchall()


@portable
def touched(db: sqlite3.Connection, after: int, through: int) -> list[tuple[str, str]]:
    """Each ticket an event at positions `after+1..through` names, with its last activity
    (repeats kept): the index numbers them in that order before reading their texts."""
    cursor = plain_cursor(db)
    return cursor.execute(_TOUCHED, (after, through)).fetchall()


@portable
def explain_texts_after(db: sqlite3.Connection) -> list[str]:
    return _plan(db, _TEXTS_AFTER, (100, 100, "100001", 500))


@portable
def explain_texts_of(db: sqlite3.Connection) -> list[str]:
    return _plan(db, _TEXTS_OF, (100, 100, _json_list(["100001", "100002"])))


@portable
def explain_touched(db: sqlite3.Connection) -> list[str]:
    return _plan(db, _TOUCHED, (1, 2))


def _json_list(keys: list[str]) -> str:
    """The keys as one parameter (a JSON array, read by `json_each`), however many."""
    return json.dumps(keys)


def _plan(db: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[str]:
    return [row["detail"] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]


# Lengths in characters, measured by the database: a long text never reaches Python.
_COLUMNS = (
    "ncentral_ticket_id,"
    " CASE WHEN length(title) + length(details) <= ? THEN title END,"
    " CASE WHEN length(title) + length(details) <= ? THEN details END,"
    " updated_at, last_position"
)
_FIRST_TEXTS = f"SELECT {_COLUMNS} FROM tickets ORDER BY ncentral_ticket_id LIMIT ?"
_TEXTS_AFTER = (
    f"SELECT {_COLUMNS} FROM tickets WHERE ncentral_ticket_id > ?"
    " ORDER BY ncentral_ticket_id LIMIT ?"
)
_TEXTS_OF = (
    f"SELECT {_COLUMNS} FROM tickets WHERE ncentral_ticket_id IN (SELECT value FROM json_each(?))"
)
_TOUCHED = (
    "SELECT e.ticket_id, t.updated_at FROM events AS e"
    " JOIN tickets AS t ON t.ncentral_ticket_id = e.ticket_id"
    " WHERE e.position > ? AND e.position <= ?"
)

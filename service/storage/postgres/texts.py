"""The text index's reads on PostgreSQL: `service.storage.texts`, statement for statement.

Titles and details come back as stored (shielded, `postgres.nul`): the list's filter
here looks for the shielded needle in the stored text, so that is what the index holds.
"""

from __future__ import annotations

from psycopg.rows import tuple_row

from service.storage.postgres.connections import Connection
from service.storage.postgres.nul import shield
from service.storage.postgres.plans import plan
from service.storage.texts import Text

__all__ = [
    "explain_texts_after",
    "explain_texts_of",
    "explain_touched",
    "needle",
    "texts_after",
    "texts_of",
    "touched",
]


def needle(db: Connection, text: str) -> str:
    """`text` lowered and shielded, as the list's filter looks for it here."""
    return shield(text.lower())


def texts_after(db: Connection, key: str | None, limit: int, longest: int) -> list[Text]:
    cursor = db.cursor(row_factory=tuple_row)
    if key is None:
        return cursor.execute(_FIRST_TEXTS, (longest, longest, limit)).fetchall()
    return cursor.execute(_TEXTS_AFTER, (longest, longest, key, limit)).fetchall()


def texts_of(db: Connection, keys: list[str], longest: int) -> list[Text]:
    cursor = db.cursor(row_factory=tuple_row)
    return cursor.execute(_TEXTS_OF, (longest, longest, keys)).fetchall()


def touched(db: Connection, after: int, through: int) -> list[tuple[str, str]]:
    return db.cursor(row_factory=tuple_row).execute(_TOUCHED, (after, through)).fetchall()


def explain_texts_after(db: Connection) -> list[str]:
    return plan(db, _TEXTS_AFTER, (100, 100, "100001", 500))


def explain_texts_of(db: Connection) -> list[str]:
    return plan(db, _TEXTS_OF, (100, 100, ["100001", "100002"]))


def explain_touched(db: Connection) -> list[str]:
    return plan(db, _TOUCHED, (1, 2))


_COLUMNS = (
    "ncentral_ticket_id,"
    " CASE WHEN length(title) + length(details) <= %s THEN title END,"
    " CASE WHEN length(title) + length(details) <= %s THEN details END,"
    " updated_at, last_position"
)
_FIRST_TEXTS = f"SELECT {_COLUMNS} FROM tickets ORDER BY ncentral_ticket_id LIMIT %s"
_TEXTS_AFTER = (
    f"SELECT {_COLUMNS} FROM tickets WHERE ncentral_ticket_id > %s"
    " ORDER BY ncentral_ticket_id LIMIT %s"
)
_TEXTS_OF = f"SELECT {_COLUMNS} FROM tickets WHERE ncentral_ticket_id = ANY(%s)"
_TOUCHED = (
    "SELECT e.ticket_id, t.updated_at FROM events AS e"
    " JOIN tickets AS t ON t.ncentral_ticket_id = e.ticket_id"
    " WHERE e.position > %s AND e.position <= %s"
)

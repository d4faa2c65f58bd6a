"""NUL characters in PostgreSQL text: spelled with a private-use mark, restored on reading.

N-central's titles, details and tag keys and values are data, a NUL included
(docs/security.md, "NUL is data"), but PostgreSQL's text cannot hold U+0000 and `jsonb`
refuses `\\u0000`. So the PostgreSQL backend stores those columns shielded: each U+E000
doubled, each NUL as U+E000 then "0". The spelling is reversible for every string,
and a string with neither character, which is every string N-central really sends, is
stored exactly as it came. The log's payloads are JSON, where a NUL is already the
escape `\\u0000`, and are never shielded, so the hash chain is the same on both backends.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = ["MARK", "holds_nul", "shield", "shield_tags", "unshield", "unshield_tags"]

MARK = "\ue000"
_MARKED = re.compile(f"{MARK}(.)", re.DOTALL)
# What JSON text holds when a tag may need shielding: an escaped NUL, or the mark itself.
_TAGS_NEED = (b"\\u0000", MARK.encode())


def holds_nul(*values: object) -> bool:
    """Whether any of `values` is text holding a NUL.

    Only the shielded columns can hold one; every other text column (ids, actions,
    states, actors) holds none on PostgreSQL, and psycopg refuses to send one. So a
    read that would compare such a column with NUL-holding text finds nothing, as the
    same read finds nothing on SQLite, and is not sent: a 404 or an empty page, not a 500.
    """
    return any(isinstance(value, str) and "\x00" in value for value in values)


def shield(text: str) -> str:
    if "\x00" not in text and MARK not in text:
        return text
    return text.replace(MARK, MARK + MARK).replace("\x00", MARK + "0")


def unshield(text: str) -> str:
    if MARK not in text:
        return text
    return _MARKED.sub(lambda found: "\x00" if found[1] == "0" else found[1], text)


def shield_tags(encoded: bytes) -> str:
    """The `custom_tags` JSON the writer made, as the text PostgreSQL stores."""
    if not any(needle in encoded for needle in _TAGS_NEED):
        return encoded.decode()
    tags: dict[str, str] = msgspec.json.decode(encoded)
    return msgspec.json.encode({shield(k): shield(v) for k, v in tags.items()}).decode()


def unshield_tags(stored: str) -> str:
    """The stored `custom_tags` as the writer made them."""
    if MARK not in stored:
        return stored
    tags: dict[str, Any] = msgspec.json.decode(stored)
    return msgspec.json.encode({unshield(k): unshield(v) for k, v in tags.items()}).decode()

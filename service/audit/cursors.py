"""The one cursor codec: opaque, URL-safe text that says what it pages and where it stopped.

A cursor is `kind:value`, base64url without padding. The kind keeps a cursor of one
listing (events in ascending order, say) from being replayed against another.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["BadCursor", "decode_cursor", "encode_cursor"]


class BadCursor(ValueError):
    """A cursor this service did not hand out, or one for another listing."""


def encode_cursor(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> str:
    """The value inside `cursor`, which must be of `kind`."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("not a cursor this service handed out") from None
    found, separator, value = text.partition(":")
    if not separator:
        raise BadCursor("not a cursor this service handed out")
    if found != kind:
        raise BadCursor(f"this cursor pages {found!r}, not {kind!r}")
    return value

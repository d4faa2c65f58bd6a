"""The cursor codec: what it hands out comes back, and nothing else is taken for a cursor."""

from __future__ import annotations

import pytest

from service.audit.cursors import BadCursor, decode_cursor, encode_cursor
from service.audit.events import cursor_position, position_cursor
from service.audit.moments import LAST_POSITION
from service.audit.tickets import cursor_ticket, ticket_cursor


@pytest.mark.parametrize("value", ["0", "42", "PSA-7", "a:b:c", "é ü", ""])
def test_a_cursor_gives_back_its_value(value: str) -> None:
    assert decode_cursor(encode_cursor("k", value), "k") == value


def test_a_cursor_is_url_safe_text() -> None:
    cursor = encode_cursor("asc", "12345678901234567890")
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor


def test_a_cursor_of_another_kind_is_refused_naming_both() -> None:
    with pytest.raises(BadCursor, match=r"'asc'.*'desc'"):
        decode_cursor(encode_cursor("asc", "5"), "desc")


@pytest.mark.parametrize("junk", ["", "!!!", "é", "bm90IGEgY3Vyc29y", "%00", "a" * 5001])
def test_junk_is_not_a_cursor(junk: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(junk, "asc")


def test_positions_round_trip_in_their_order() -> None:
    assert cursor_position(position_cursor("desc", 77), "desc") == 77
    with pytest.raises(BadCursor):
        cursor_position(position_cursor("desc", 77), "asc")


@pytest.mark.parametrize("value", ["²", "-1", "1e3", " 5", str(LAST_POSITION + 1), "9" * 40])
def test_a_position_cursor_holds_ascii_digits_in_range(value: str) -> None:
    with pytest.raises(BadCursor):
        cursor_position(encode_cursor("asc", value), "asc")


def test_ticket_cursors_are_not_position_cursors() -> None:
    assert cursor_ticket(ticket_cursor("1001")) == "1001"
    with pytest.raises(BadCursor):
        cursor_ticket(position_cursor("asc", 1001))

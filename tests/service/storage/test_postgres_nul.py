"""NUL in N-central's text on PostgreSQL: shielded for storage, restored exactly on reading."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from service.storage.postgres.nul import MARK, shield, shield_tags, unshield, unshield_tags

TRICKY = st.text(alphabet=st.sampled_from(["\x00", MARK, "0", "a", "\\", "u"]), max_size=12)


@given(TRICKY)
def test_every_string_comes_back_exactly_and_holds_no_nul_when_stored(text: str) -> None:
    stored = shield(text)
    assert "\x00" not in stored
    assert unshield(stored) == text


@given(st.dictionaries(TRICKY, TRICKY, max_size=4))
def test_tags_come_back_exactly_and_hold_no_nul_when_stored(tags: dict[str, str]) -> None:
    encoded = msgspec.json.encode(tags)
    stored = shield_tags(encoded)
    assert not any("\x00" in text for pair in msgspec.json.decode(stored).items() for text in pair)
    assert unshield_tags(stored).encode() == encoded


def test_text_without_nul_or_mark_is_stored_as_sent() -> None:
    assert shield("Disk C: 98% full \\u0000") == "Disk C: 98% full \\u0000"

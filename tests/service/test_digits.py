"""The one reader of numbers that arrive as text: ASCII digits, bounded, or a clear refusal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.digits import LARGEST, NotAWholeNumber, whole_number


@pytest.mark.parametrize(
    "text",
    ["", "²", "³", "\N{ARABIC-INDIC DIGIT ONE}", "1_000", " 1", "1 ", "+1", "-1", "0x10", "1.0"],
)
def test_only_ascii_digits_are_a_number(text: str) -> None:
    with pytest.raises(NotAWholeNumber):
        whole_number(text)


def test_the_bound_is_checked_before_converting() -> None:
    assert whole_number(str(LARGEST)) == LARGEST
    assert whole_number("0042", largest=1000) == 42
    for text, largest in ((str(LARGEST + 1), LARGEST), ("9" * 5000, LARGEST), ("1001", 1000)):
        with pytest.raises(NotAWholeNumber):
            whole_number(text, largest=largest)


@given(st.text(max_size=30))
def test_any_text_is_a_number_or_refused_never_anything_else(text: str) -> None:
    try:
        value = whole_number(text)
    except NotAWholeNumber:
        assert not (text.isascii() and text.isdigit()) or int(text) > LARGEST or len(text) > 19
        return
    assert text.isascii() and text.isdigit() and int(text) == value <= LARGEST

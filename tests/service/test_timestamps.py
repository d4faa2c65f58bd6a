"""The log's one time format, as `utc_now` writes it from the clock (a second's text made
once, then microseconds): the same text `format_utc` gives the same moment."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from service import timestamps
from service.timestamps import format_utc, utc_now


def test_now_lies_between_two_readings_of_the_clock_as_text() -> None:
    before = format_utc(datetime.now(UTC))
    now = utc_now()
    after = format_utc(datetime.now(UTC))
    assert before <= now <= after
    assert datetime.fromisoformat(now).tzinfo == UTC


@pytest.mark.parametrize(
    "nanoseconds",
    [
        1_700_000_000_999_999_999,  # the last microsecond of a second, rounded down
        1_700_000_001_000_000_000,  # the next second: its text is made again
        1_700_000_001_000_000_999,
        1_704_067_199_999_999_000,  # the last microsecond of a year
        1_704_067_200_000_001_000,
    ],
)
def test_now_is_written_as_format_utc_writes_that_moment(
    monkeypatch: pytest.MonkeyPatch, nanoseconds: int
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: nanoseconds)
    seconds, remainder = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=remainder // 1000)
    assert utc_now() == format_utc(moment)


def test_an_offset_is_counted_from_now() -> None:
    soon = datetime.fromisoformat(utc_now(90.0))
    assert 89 < (soon - datetime.now(UTC)).total_seconds() <= 90
    assert timestamps.seconds_until(utc_now(90.0)) > 89

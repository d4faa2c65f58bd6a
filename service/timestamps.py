"""The log's one time format: UTC ISO-8601 with microseconds and `Z`.

Every time the log records and every time filter is written this way, so comparing the
text compares the times: `recorded_at >= ?` in SQL is a time comparison, and an index on
the text is an index on time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

__all__ = ["format_utc", "seconds_until", "utc_now"]


def format_utc(moment: datetime) -> str:
    """`moment` (aware) in the log's format."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def utc_now(offset: float = 0.0) -> str:
    """Now, or `offset` seconds from now, in the log's format.

    The writer stamps every event with it: now is written from the clock's microseconds
    and the text of the current second, made once a second, a third of the cost of
    formatting a datetime (measured in bench/results.md). The clock and the rounding
    (down to the microsecond) are `datetime.now`'s.
    """
    if offset:
        return format_utc(datetime.now(UTC) + timedelta(seconds=offset))
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    second = _second[0]  # one read of a pair, so another thread cannot mix two seconds
    if second[0] != seconds:
        second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
        _second[0] = second
    return f"{second[1]}.{micros:06d}Z"


#: The second `utc_now` last wrote, and its text.
_second: list[tuple[int, str]] = [(-1, "")]


def seconds_until(moment: str) -> float:
    """How far in the future a time in the log's format is (negative when past)."""
    return (datetime.fromisoformat(moment) - datetime.now(UTC)).total_seconds()

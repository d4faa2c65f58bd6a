"""The log's one time format: UTC ISO-8601 with microseconds and `Z`.

Every time the log records and every time filter is written this way, so comparing the
text compares the times: `recorded_at >= ?` in SQL is a time comparison, and an index on
the text is an index on time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["format_utc", "seconds_until", "utc_now"]


def format_utc(moment: datetime) -> str:
    """`moment` (aware) in the log's format."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def utc_now(offset: float = 0.0) -> str:
    """Now, or `offset` seconds from now, in the log's format."""
    return format_utc(datetime.now(UTC) + timedelta(seconds=offset))


def seconds_until(moment: str) -> float:
    """How far in the future a time in the log's format is (negative when past)."""
    return (datetime.fromisoformat(moment) - datetime.now(UTC)).total_seconds()

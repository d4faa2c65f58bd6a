"""Moments: times and positions in, positions out, on a real log on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from service.audit.moments import (
    LAST_POSITION,
    BadMoment,
    first_position_from,
    last_position_at,
    parse_moment,
    parse_time,
)
from service.storage.backend import backend_for, is_url

TIMES = [
    "2026-01-01T10:00:00.000000Z",
    "2026-01-01T10:00:00.000000Z",
    "2026-01-01T11:30:00.000000Z",
]


@pytest.fixture
def db(log_db: Path | str) -> Iterator[Any]:
    """A read-only connection to a log of three events at `TIMES`, on each backend."""
    backend = backend_for(log_db)
    mark = "%s" if is_url(log_db) else "?"
    with closing(backend.connect_sync(readonly=False)) as writer:
        for position, recorded_at in enumerate(TIMES, start=1):
            writer.execute(
                "INSERT INTO events (position, action, outcome, recorded_at, actor, payload,"
                " schema_version, prev_hash, hash)"
                f" VALUES ({mark}, 'x', 'recorded', {mark}, 'a', '{{}}', 1, '', '')",
                (position, recorded_at),
            )
    with closing(backend.connect_sync()) as reader:
        yield reader


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T10:00:00Z", "2026-01-01T10:00:00.000000Z"),
        ("2026-01-01T11:00:00+01:00", "2026-01-01T10:00:00.000000Z"),
        ("2026-01-01T10:00:00", "2026-01-01T10:00:00.000000Z"),
        (" 2026-01-01 10:00:00.5Z ", "2026-01-01T10:00:00.500000Z"),
    ],
)
def test_times_are_written_as_the_log_writes_them(text: str, expected: str) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "text", ["yesterday", "", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+01:00"]
)
def test_what_is_not_a_time_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(BadMoment, match=r"ISO-8601|years"):
        parse_time(text)


def test_digits_are_a_position_and_ones_past_the_log_mean_now() -> None:
    assert parse_moment("42") == 42
    assert parse_moment(str(2**63 - 1)) == LAST_POSITION
    with pytest.raises(BadMoment, match="ASCII digits"):
        parse_moment("9" * 30)
    assert parse_moment("2026-01-01T10:00:00Z") == "2026-01-01T10:00:00.000000Z"


def test_a_time_becomes_the_last_position_recorded_by_then(db: Any) -> None:
    assert last_position_at(db, "2026-01-01T09:59:59.999999Z") == 0
    assert last_position_at(db, "2026-01-01T10:00:00.000000Z") == 2
    assert last_position_at(db, "2026-01-01T12:00:00.000000Z") == 3
    assert last_position_at(db, 2) == 2
    assert last_position_at(db, LAST_POSITION) == 3


def test_since_a_time_starts_at_the_first_event_recorded_then(db: Any) -> None:
    assert first_position_from(db, "2026-01-01T10:00:00.000000Z") == 1
    assert first_position_from(db, "2026-01-01T10:00:00.000001Z") == 3
    assert first_position_from(db, "2026-01-02T00:00:00.000000Z") is None

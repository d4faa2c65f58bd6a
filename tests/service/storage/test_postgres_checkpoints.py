"""Checkpoints on PostgreSQL, read through a binary COPY: each comes back as it was stored,
byte for byte, however large and wherever the driver's chunks of the output fall."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from service.storage.checkpoints import Checkpoint, raw_records_of, snapshot_of
from service.storage.postgres import checkpoints
from service.storage.postgres.connections import connect_sync
from statemachine.projection import Record
from statemachine.ticket import State


@pytest.fixture
def db(postgres_url: str) -> Iterator[Any]:
    with closing(connect_sync(postgres_url, readonly=False)) as conn:
        yield conn


def big_checkpoint(position: int, tickets: int) -> Checkpoint:
    """A full checkpoint of `tickets` tickets, each with 300 random hex digits of details
    (which compress to no less than half)."""
    noise = random.Random(position)
    records = {
        f"T-{n}\x00é": Record(
            f"PSA-{n}",
            State.OPEN,
            f"disk full on host-{n}",
            noise.randbytes(150).hex(),
            {"site": "Leeds"},
            "2026-11-30T00:00:00.000000Z",
            "2026-11-30T00:00:01.000000Z",
        )
        for n in range(tickets)
    }
    return snapshot_of(position, records)


def test_a_checkpoint_comes_back_as_stored(db: Any) -> None:
    # Past 2**31, so that a position read as a 32-bit number would come back wrong.
    stored = big_checkpoint(2**40 + 7, 8_000)
    assert len(stored.snapshot) > 1_000_000
    assert checkpoints.store(db, stored)

    found = checkpoints.at(db, stored.position)
    assert found is not None
    assert (found.position, found.tickets, found.digest) == stored[:3]
    assert bytes(found.snapshot) == stored.snapshot
    assert [c.position for c in checkpoints.at_or_before(db, 2**41)] == [stored.position]
    held = raw_records_of(found)
    assert held is not None and len(held.records) == 8_000


def test_no_checkpoint_is_none_not_an_error(db: Any) -> None:
    assert checkpoints.at(db, 10) is None
    assert list(checkpoints.at_or_before(db, 10)) == []
    assert list(checkpoints.every(db)) == []


def test_a_row_cut_across_chunks_is_read_whole(db: Any) -> None:
    """PostgreSQL sends the row in one message today; output cut anywhere reads the same."""
    stored = big_checkpoint(40, 50)
    checkpoints.store(db, stored)
    statement = f"COPY ({checkpoints._AT}) TO STDOUT (FORMAT binary)"
    with db.cursor().copy(statement, (40,)) as copy:
        output = b"".join(bytes(chunk) for chunk in copy)
    for cut in [1, 10, 19, 21, 25, 40, len(output) - 3, len(output) - 1]:
        fields = checkpoints._first_row([output[:cut], output[cut:]])
        assert fields is not None
        assert bytes(fields[3]) == stored.snapshot, cut
        assert str(fields[2], "utf-8") == stored.digest, cut

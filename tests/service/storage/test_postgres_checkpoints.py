"""Checkpoints on PostgreSQL: each comes back packed as it was stored, byte for byte, and
unpacks to the tickets it was made of."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from service.storage.checkpoints import Checkpoint, records_of, snapshot_of
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
    unpacked = records_of(found)
    assert unpacked is not None and len(unpacked) == 8_000
    assert unpacked == records_of(stored)


def test_no_checkpoint_is_none_not_an_error(db: Any) -> None:
    assert checkpoints.at(db, 10) is None
    assert list(checkpoints.at_or_before(db, 10)) == []
    assert list(checkpoints.every(db)) == []

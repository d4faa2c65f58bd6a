"""Checkpoints written while the service runs: every N events, off the write path.

The writer only notices (on commit) that the log has passed the next multiple of N. A
task then reads the tickets as they stand on a read-only connection in a worker thread,
encodes them, and hands the finished checkpoint to the writer as one more command: the
writer's cost is one INSERT of a blob every N events, in the transaction of whatever
batch comes next. The write path never waits on reading or encoding a hundred thousand
tickets, and a checkpoint lost to a crash is simply made at the next multiple.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from service.ledger.writer import Batch, Ledger
from service.storage import checkpoints
from service.storage.checkpoints import Checkpoint
from service.timestamps import utc_now

__all__ = ["Checkpointer", "StoreCheckpoint"]

log = logging.getLogger("psa_ledger.checkpoints")


class StoreCheckpoint:
    """The writer's part: one row, in the next batch's transaction."""

    ticket_id = None

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint

    def apply(self, batch: Batch) -> None:
        batch.execute(checkpoints.INSERT_CHECKPOINT, (*self.checkpoint, utc_now()))


class Checkpointer:
    """Makes a checkpoint each time the log passes a multiple of `every` events."""

    def __init__(self, ledger: Ledger, path: Path, every: int) -> None:
        self._ledger = ledger
        self._path = path
        self._every = every
        self._due = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        ledger.on_commit(self._committed)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="psa-ledger-checkpoints")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _committed(self, batch: Batch) -> None:
        """On the writer's task: a comparison, and at most a flag set."""
        first = batch.tail.position - len(batch.events)
        if batch.events and batch.tail.position // self._every > first // self._every:
            self._due.set()

    async def _run(self) -> None:
        while True:
            await self._due.wait()
            self._due.clear()
            try:
                checkpoint = await asyncio.to_thread(checkpoints.current, self._path)
                if checkpoint is not None:
                    await self._ledger.submit(StoreCheckpoint(checkpoint))
            except Exception as exc:
                # Time travel only gets slower without it; the next multiple tries again.
                log.warning("checkpoint not made: %r", exc)

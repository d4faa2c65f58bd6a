"""Checkpoints made while the service runs: every N events, outside the service process.

The writer only notices (on commit) that the log has passed the next multiple of N: a
comparison per batch. A task then runs `psa-ledger checkpoint`'s code on the log
(`python -m service.shell.checkpoint`, which loads only that code: under load this runs
every few seconds, and each start of the whole shell cost 0.25 s of CPU), a process of
its own that reads the tickets changed since the latest checkpoint (every ticket, when a
full one is due) in one read snapshot, encodes them and stores the result in one short
transaction. So the write path never waits on reading or encoding a hundred
thousand tickets, and the service's memory never holds them: a snapshot allocated and
freed inside a long-lived process leaves its resident set higher each time. A checkpoint
lost to a crash is simply made at the next multiple.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from service.ledger.writer import Batch, Ledger

__all__ = ["Checkpointer"]

log = logging.getLogger("psa_ledger.checkpoints")


class Checkpointer:
    """Makes a checkpoint each time the log passes a multiple of `every` events."""

    def __init__(self, ledger: Ledger, db: Path | str, every: int) -> None:
        self._db = db
        self._every = every
        self._due = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None
        ledger.on_commit(self._committed)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="psa-ledger-checkpoints")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()

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
                await self._checkpoint()
            except Exception as exc:
                # Time travel only gets slower without it; the next multiple tries again.
                log.warning("checkpoint not made: %r", exc)

    async def _checkpoint(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.shell.checkpoint",
            "--db",
            str(self._db),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, errors = await self._process.communicate()
        if self._process.returncode != 0:
            log.warning("checkpoint not made: %s", errors.decode(errors="replace")[-500:])

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
import re
import sys
from pathlib import Path

from service.ledger.writer import Batch, Ledger

__all__ = ["Checkpointer"]

log = logging.getLogger("psa_ledger.checkpoints")


class Checkpointer:
    """Makes a checkpoint each time the log passes a multiple of `every` events, unless the
    last one, made while the log passed it, already holds it (a second would be one more
    process for a few more events)."""

    def __init__(self, ledger: Ledger, db: Path | str, every: int) -> None:
        self._db = db
        self._every = every
        self._due = asyncio.Event()
        #: The last multiple of `every` the log passed, and the position the last checkpoint
        #: was made at: a multiple passed while a checkpoint was being made may already be
        #: in it, and then needs no other.
        self._passed = 0
        self._made_at = 0
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
            self._passed = batch.tail.position // self._every * self._every
            self._due.set()

    async def _run(self) -> None:
        while True:
            await self._due.wait()
            self._due.clear()
            if self._passed <= self._made_at:
                continue
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
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        said, errors = await self._process.communicate()
        if self._process.returncode != 0:
            log.warning("checkpoint not made: %s", errors.decode(errors="replace")[-500:])
            return
        made = _MADE_AT.search(said.decode(errors="replace"))
        if made is not None:
            self._made_at = int(made.group(1))


#: The position in the line the checkpoint process prints ("checkpoint: stored at position
#: N: ...", or "already stored at position N"; `service.shell.checkpoint.make`).
_MADE_AT = re.compile(r"at position (\d+):")

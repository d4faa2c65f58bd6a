"""Checkpoints made while the service runs: every N events, outside the service process.

The writer only notices (on commit) that the log has passed the next multiple of N: a
comparison per batch. A task then asks a process of its own for `psa-ledger checkpoint`'s
code on the log (`python -m service.shell.checkpoint`, which loads only that code), and
the process reads the tickets changed since the latest checkpoint (every ticket, when a
full one is due) in one read snapshot, encodes them and stores the result in one short
transaction. So the write path never waits on reading or encoding a hundred thousand
tickets, and the service's memory never holds them: a snapshot allocated and freed inside
a long-lived process leaves its resident set higher each time.

Under load a checkpoint is due every second or two, and starting its process cost more
CPU than the checkpoint (0.15 s on PostgreSQL, most of it importing psycopg), taken from
the requests: so the process that made a delta is kept for the next checkpoint. The one
that made a full checkpoint, having held every ticket, is ended, and hands that memory
back; so is one that failed. A kept process found gone when the next checkpoint is due
(killed while it waited) is replaced for that checkpoint. A checkpoint lost to a crash is
simply made at the next multiple.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
from pathlib import Path

from service.ledger.writer import Batch, Ledger

__all__ = ["Checkpointer"]

log = logging.getLogger("psa_ledger.checkpoints")


class Checkpointer:
    """Makes a checkpoint each time the log passes a multiple of `every` events, unless the
    last one, made while the log passed it, already holds it (a second would be one more
    checkpoint for a few more events)."""

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
        await self._end_process()

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
                kept = await self._checkpoint()
            except Exception as exc:
                # Time travel only gets slower without it; the next multiple tries again.
                log.warning("checkpoint not made: %r", exc)
                kept = False
            if not kept:
                await self._end_process()

    async def _checkpoint(self) -> bool:
        """One checkpoint from the process; whether to keep the process for the next."""
        reused = self._process is not None
        said = await self._asked()
        if not said and reused:
            # Gone since the last checkpoint (killed, say): this one is due now, so a new
            # process makes it.
            await self._end_process()
            said = await self._asked()
        made = _MADE_AT.search(said)
        if made is None:
            log.warning("%s", said or "checkpoint not made: its process ended")
            return False
        self._made_at = int(made.group(1))
        return _DELTA.search(said) is not None

    async def _asked(self) -> str:
        """The process's answer to a request for a checkpoint, started if there is none;
        empty if it ended."""
        if self._process is None:
            # The log's name in the environment, not on the command line, where `ps` would
            # show a URL's password to every user.
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service.shell.checkpoint",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "PSA_LEDGER_DB": str(self._db)},
            )
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        if process.returncode is not None:  # its pipes are closed
            return ""
        try:
            process.stdin.write(b"\n")
            await process.stdin.drain()
        except ConnectionError:  # it ended meanwhile
            return ""
        return (await process.stdout.readline()).decode(errors="replace").strip()

    async def _end_process(self) -> None:
        """Ends the checkpoint process, if any, waiting between two checkpoints or in one:
        what it was making is made at the next multiple."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


#: The position in the line the checkpoint process prints ("checkpoint: stored at position
#: N: ...", or "already stored at position N"; `service.shell.checkpoint.make`).
_MADE_AT = re.compile(r"at position (\d+):")
#: The end of a delta's line: "(changed since position N)".
_DELTA = re.compile(r"\(changed since position \d+\)$")

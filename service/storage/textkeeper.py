"""The text index's own thread: it builds the index, then keeps it near the log's head.

A thread of its own, not the read pool's: building reads every ticket (1.5 s of a core
on 100,000), and on two cores that work, done beside the requests, made the first
review after a start wait up to twice as long. This thread runs at a lower CPU priority
(nice 5: about a third of a request thread's share of a busy core; Linux schedules each
thread on its own), so requests come first. Not the lowest: at nice 19 on a loaded
machine (load 8) the index was still not built after the 17 s of a benchmark run. Since
a text query brings the index to its own head anyway, the refresh only keeps that
catch-up short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading

from service.storage.readpool import ReadPool
from service.storage.textindex import TextIndex

__all__ = ["TextKeeper"]

log = logging.getLogger("psa_ledger.textindex")


class TextKeeper:
    def __init__(self, texts: TextIndex, reads: ReadPool, *, every: float = 1.0) -> None:
        self._texts = texts
        self._reads = reads
        self._every = every
        self._stopping = threading.Event()
        # Held while the thread is started or stopped: the two come from different threads.
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread, unless the keeper was stopped: stopped, it stays stopped."""
        with self._lock:
            if self._stopping.is_set() or self._thread is not None:
                return
            # A daemon: a process that ends without stopping it is not held up by it.
            self._thread = threading.Thread(
                target=self._keep, name="psa-ledger-text-index", daemon=True
            )
            self._thread.start()

    def start_after(self, first: asyncio.Future[None]) -> None:
        """`start`, as the callback of work to finish `first`; not when it was cancelled
        (the server is stopping).

        The callback may also come after `stop`: `first` done, its callbacks due, and the
        server's shutdown run before them. Started then, the thread would outlive the
        read pool it reads through and open a new one that nothing closes (on PostgreSQL,
        a pool that keeps reconnecting to a server long gone); `start` refuses instead."""
        if not first.cancelled():
            self.start()

    def stop(self) -> None:
        """Stop after the pass under way (a build is not interrupted), then close the index."""
        with self._lock:
            self._stopping.set()
            thread = self._thread
        if thread is not None:
            thread.join()
        self._texts.close()

    def _keep(self) -> None:
        _lower_priority()
        pause = self._every
        while not self._stopping.is_set():
            try:
                self._reads.run_here(self._texts.refresh)
                pause = self._every
            except Exception as exc:  # the log unreachable, the disk full: try again later
                log.warning("the text index could not be brought to the head: %r", exc)
                pause = min(pause * 2, _LONGEST_PAUSE)
            self._stopping.wait(pause)


def _lower_priority() -> None:
    """This thread's CPU priority lowered (where the system allows)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _NICE)


_NICE = 5
#: Seconds: the longest wait between tries after failures.
_LONGEST_PAUSE = 60.0

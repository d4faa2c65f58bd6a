"""A thread pool that hands each piece of work to the thread that went idle last.

`concurrent.futures.ThreadPoolExecutor` keeps its idle threads waiting on one queue, and
the queue wakes them in turn: once two read threads existed, one console page at a time
went to each by turns, woken cold. So here idle threads wait each on its own lock, on a
stack: the last to finish is the first woken. Under one reader at a time one thread does
all the work; under many, up to `most` run at once, as before. Measured around wrk at
one connection on a million-event log (per-thread CPU from /proc, three alternated pairs,
bench/results.md "Round 17"): the read threads' CPU for `/callbacks` 158-166 -> 128-131
µs a request, its median 450-464 -> 416-426 µs; under 8 connections the two were within
the noise of each other.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

__all__ = ["MostRecentFirst"]

P = ParamSpec("P")
T = TypeVar("T")


class MostRecentFirst(Executor):
    """Up to `most` daemon threads named `name`_N, started as work first needs them."""

    def __init__(self, most: int, name: str) -> None:
        self._most, self._name = most, name
        self._lock = threading.Lock()
        self._idle: list[_Slot] = []
        self._waiting: deque[_Work] = deque()
        self._threads: list[threading.Thread] = []
        self._shut = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        work = _Work(future, fn, args, kwargs)
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._idle:
                self._idle.pop().hand(work)
                return future
            self._waiting.append(work)
            if len(self._threads) < self._most:
                self._start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new work; work not yet begun is cancelled if `cancel_futures`, else done."""
        with self._lock:
            self._shut = True
            if cancel_futures:
                while self._waiting:
                    self._waiting.popleft().future.cancel()
            idle, self._idle = self._idle, []
            threads = list(self._threads)
        for slot in idle:
            slot.hand(None)
        if wait:
            for thread in threads:
                thread.join()

    def _start(self) -> None:
        thread = threading.Thread(
            target=self._serve, name=f"{self._name}_{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _serve(self) -> None:
        slot = _Slot()
        while True:
            with self._lock:
                work = self._waiting.popleft() if self._waiting else None
                if work is None:
                    if self._shut:
                        return
                    self._idle.append(slot)
            if work is None:
                work = slot.wait()
                if work is None:
                    return
            work.run()


class _Work:
    __slots__ = ("args", "fn", "future", "kwargs")

    def __init__(self, future: Future[Any], fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        self.future, self.fn, self.args, self.kwargs = future, fn, args, kwargs

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)


class _Slot:
    """Where an idle thread waits to be handed work (None: stop)."""

    __slots__ = ("_ready", "_work")

    def __init__(self) -> None:
        self._ready = threading.Lock()
        self._ready.acquire()
        self._work: _Work | None = None

    def hand(self, work: _Work | None) -> None:
        self._work = work
        self._ready.release()

    def wait(self) -> _Work | None:
        self._ready.acquire()
        work, self._work = self._work, None
        return work

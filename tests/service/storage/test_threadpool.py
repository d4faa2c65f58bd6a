"""The read pool's threads: work goes to the thread idle the shortest time, up to a cap."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest

from service.storage.threadpool import MostRecentFirst


def test_work_one_at_a_time_stays_on_the_thread_that_finished_last() -> None:
    pool = MostRecentFirst(4, "test-read")
    try:
        # Two pieces of work that each wait for the other: two threads, idle afterwards...
        both = threading.Barrier(2, timeout=5)
        held = [pool.submit(_name_when, both) for _ in range(2)]
        started = {future.result(timeout=5) for future in held}
        assert len(started) == 2
        # ...and each later piece of work, one at a time, goes to the same one of them
        # (a queue that wakes its waiters in turn would alternate between the two).
        names = [pool.submit(_name).result(timeout=5) for _ in range(20)]
        assert len(set(names)) == 1, names
        assert names[0] in started
    finally:
        pool.shutdown()


def test_no_more_threads_run_at_once_than_the_cap_and_the_rest_wait_their_turn() -> None:
    pool = MostRecentFirst(3, "test-read")
    try:
        lock = threading.Lock()
        running, most = [0], [0]
        release = threading.Event()

        def busy() -> None:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            release.wait(5)
            with lock:
                running[0] -= 1

        futures = [pool.submit(busy) for _ in range(10)]
        deadline = time.monotonic() + 5
        while running[0] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # time enough for a fourth to start, were it allowed
        assert (running[0], sum(f.done() for f in futures)) == (3, 0)
        release.set()
        for future in futures:
            future.result(timeout=5)
        assert most[0] == 3
        assert {t.name for t in threading.enumerate() if t.name.startswith("test-read")} <= {
            "test-read_0",
            "test-read_1",
            "test-read_2",
        }
    finally:
        pool.shutdown()


def test_results_and_exceptions_reach_the_caller() -> None:
    pool = MostRecentFirst(2, "test-read")
    try:
        assert pool.submit(pow, 2, 10).result(timeout=5) == 1024
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(timeout=5)
        # The thread that raised still serves.
        assert pool.submit(str.upper, "ok").result(timeout=5) == "OK"
    finally:
        pool.shutdown()


def test_shutdown_cancels_work_not_begun_lets_threads_go_and_refuses_more() -> None:
    pool = MostRecentFirst(1, "test-shut")
    started, release = threading.Event(), threading.Event()

    def hold() -> bool:
        started.set()
        return release.wait(5)

    begun = pool.submit(hold)
    assert started.wait(5)
    waiting = pool.submit(str, "never")
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    assert begun.result(timeout=5) is True
    with pytest.raises(CancelledError):
        waiting.result(timeout=5)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(str, "late")
    pool.shutdown(wait=True)
    assert not [t for t in threading.enumerate() if t.name.startswith("test-shut")]


def test_shutdown_without_cancelling_finishes_the_work_waiting() -> None:
    pool = MostRecentFirst(1, "test-drain")
    release = threading.Event()
    first = pool.submit(release.wait, 5)
    second = pool.submit(str, "done")
    release.set()
    pool.shutdown(wait=True)
    assert (first.result(timeout=0), second.result(timeout=0)) == (True, "done")


def _name() -> str:
    return threading.current_thread().name


def _name_when(both: threading.Barrier) -> str:
    both.wait()
    return threading.current_thread().name

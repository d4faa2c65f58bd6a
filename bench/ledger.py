"""The write path: group commit against one transaction per request, in the same run.

Both sides use the real `Ledger` and the real N-central command on a real file with
`synchronous=FULL`; the only difference is whether requests wait for each other (one in
flight: every request is its own transaction and fsync) or arrive together (the writer
commits whatever is waiting as one batch).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench import traffic
from service.ledger.intake import AnswerPolicy, RecordRequest
from service.ledger.writer import Ledger

POLICY = AnswerPolicy(base_url="http://bench")


def main(argv: list[str] | None = None) -> dict[str, float]:
    scale = _scale(argv or [])
    count = max(50, int(4000 * scale))
    with tempfile.TemporaryDirectory() as folder:
        one_by_one = asyncio.run(_measure(Path(folder) / "serial.db", count, concurrency=1))
        grouped = asyncio.run(_measure(Path(folder) / "grouped.db", count, concurrency=256))
    ratio = grouped / one_by_one
    print(f"ledger: one transaction per request  {one_by_one:9.0f} requests/s  (baseline)")
    print(f"ledger: group commit, 256 in flight  {grouped:9.0f} requests/s  ({ratio:.1f}x)")
    return {"serial": one_by_one, "grouped": grouped, "ratio": ratio}


async def _measure(db: Path, count: int, *, concurrency: int) -> float:
    ledger = Ledger(db)
    await ledger.open()
    bodies = [traffic.update(n) for n in range(count)]
    gate = asyncio.Semaphore(concurrency)

    async def send(body: bytes) -> None:
        async with gate:
            await ledger.submit(RecordRequest(POLICY, body, actor="bench", request_id="-"))

    await asyncio.gather(*(send(traffic.create(n)) for n in range(traffic.TICKETS)))
    started = time.perf_counter()
    await asyncio.gather(*(send(body) for body in bodies))
    elapsed = time.perf_counter() - started
    await ledger.close()
    return count / elapsed


def _scale(argv: list[str]) -> float:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full run")
    return float(parser.parse_known_args(argv)[0].scale)

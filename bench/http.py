"""Requests per second through a real `psa-ledger serve`, against a no-database route.

The baseline is `/healthz` on the same server in the same run: what Litestar and uvicorn
cost with no ledger at all. The ratio says how much of that speed the write path keeps.
The client is a few lines of asyncio over keep-alive connections, cheap enough that the
server, not the client, is what gets measured.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench import servers, traffic


def main(argv: list[str] | None = None) -> dict[str, float]:
    scale = _scale(argv or [])
    count = max(200, int(20000 * scale))
    with (
        tempfile.TemporaryDirectory() as folder,
        servers.psa_ledger(Path(folder) / "bench.db") as port,
    ):
        health = asyncio.run(_load(port, [_get("/healthz")] * count))
        creates = [_put(traffic.create(n)) for n in range(traffic.TICKETS)]
        asyncio.run(_load(port, creates))
        updates = [_put(traffic.update(n)) for n in range(count)]
        writes = asyncio.run(_load(port, updates))
    ratio = writes / health
    print(f"http: GET /healthz (no database)      {health:9.0f} requests/s  (baseline)")
    print(f"http: PUT /ncentral/tickets UPDATE    {writes:9.0f} requests/s  ({ratio:.2f}x)")
    return {"healthz": health, "writes": writes, "ratio": ratio}


async def _load(port: int, requests: list[bytes], connections: int = 32) -> float:
    queue = list(reversed(requests))
    statuses: list[int] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            writer.write(queue.pop())
            statuses.append(await _read_response(reader))
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    failed = [s for s in statuses if s >= 300]
    if failed:
        raise RuntimeError(f"{len(failed)} requests failed, e.g. status {failed[0]}")
    return len(requests) / elapsed


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def _put(body: bytes) -> bytes:
    head = (
        f"PUT /ncentral/tickets HTTP/1.1\r\nHost: bench\r\nAuthorization: {servers.AUTH}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _scale(argv: list[str]) -> float:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full run")
    return float(parser.parse_known_args(argv)[0].scale)

"""What `serve` allows each connection before its request reaches the app.

uvicorn caps concurrent connections (`limit_concurrency`: over it, a 503), but it checks
the cap only once a request's headers are complete, and its httptools protocol bounds
neither how long headers may take nor how large they may grow: a client that sends them
a byte at a time holds its connection (and a place under the cap) for ever, and one that
never ends them made a server hold 120 MB of them (measured). No setting of uvicorn's covers this
(`timeout_keep_alive` runs only between requests), and the app cannot, as it is called
after the headers. So this protocol adds both limits where headers are read:

- the headers must be complete within `header_timeout` seconds of the connection opening
  (or of the first byte of a later request on it), else 408 and the connection closes;
- they may not exceed `MAX_HEADER_BYTES`, else 431 and the connection closes.

Bodies are not affected: Litestar refuses one over 1 MiB with 413.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.ledger.answers import problem

__all__ = ["MAX_HEADER_BYTES", "HeaderLimits", "http_protocol"]

#: N-central's headers are a few hundred bytes; a browser's a few kB.
MAX_HEADER_BYTES = 64 * 1024


def http_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with `HeaderLimits`, for `uvicorn.run(http=...)`."""
    return type("HeaderLimits", (HeaderLimits,), {"header_timeout": header_timeout})


class HeaderLimits(HttpToolsProtocol):
    """httptools' protocol, refusing headers that come too slowly or grow too large."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_headers = False
        self._start_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._reading_headers or self.transport.is_closing():
            return
        # Counted after parsing, so a chunk that ends the headers and starts the body is
        # never held against them.
        self._header_bytes += len(data)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(431, f"request headers are limited to {MAX_HEADER_BYTES} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_headers:
            self._start_headers()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._stop_clock()
        # uvicorn's cap counts request tasks as well as connections, and under uvloop a
        # keep-alive client's next request can arrive before the finished task of its last
        # one is dropped from the count: 64 busy connections were refused 503 under a cap
        # of 100 (measured, bench/ingest). Only a task that has not finished holds a place.
        # The set is the server's, shared by every connection: it is swept only when it
        # would refuse, not walked at every request.
        cap = self.limit_concurrency
        if cap is not None and len(self.tasks) >= cap:
            self.tasks.difference_update([task for task in self.tasks if task.done()])
        super().on_headers_complete()

    def _start_headers(self) -> None:
        self._reading_headers = True
        self._header_bytes = 0
        self._stop_clock()
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _stop_clock(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self._reading_headers and not self.transport.is_closing():
            detail = f"the request's headers did not arrive within {self.header_timeout:g} s"
            self._refuse(408, detail)

    def _refuse(self, status: int, detail: str) -> None:
        """Answer before the app ever sees the request, and hang up."""
        self._reading_headers = False
        self._stop_clock()
        phrase = HTTPStatus(status).phrase
        answer = problem(status, phrase, detail)
        body = answer.content()
        head = (
            f"HTTP/1.1 {status} {phrase}\r\n"
            f"content-type: {answer.media_type}\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()

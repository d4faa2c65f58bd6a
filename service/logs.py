"""Logging, configured by psa-ledger: text for a person, JSON lines for a machine.

One handler on the root logger, on stderr (stdout is where the shell tools write data), so
our lines, uvicorn's and the libraries' all come out in one format. Every HTTP request
gets one access line of our own, with the request id that the event log also records.

Never logged: request or response bodies, query strings, headers (so no Authorization),
passwords and tokens. Libraries that would log request contents are held at warning.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TextIO

import msgspec

if TYPE_CHECKING:
    # Only for the access log's signatures: the shell tools configure logging too, and
    # importing Litestar would add half a second to each of their starts.
    from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

__all__ = ["FORMATS", "LEVELS", "AccessLog", "LogFormat", "LogLevel", "configure_logging"]

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]
LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")
FORMATS: tuple[LogFormat, ...] = ("text", "json")

#: Longest X-Request-Id kept; the event log stores the same id.
MAX_REQUEST_ID = 128


def configure_logging(
    level: LogLevel = "info", fmt: LogFormat = "text", stream: TextIO | None = None
) -> None:
    """Replace whatever logging was set up with ours; safe to call again."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines() if fmt == "json" else TextLines())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet = max(logging.WARNING, root.level)
    for name in _REVEALING:
        logging.getLogger(name).setLevel(quiet)


class AccessLog:
    """ASGI wrapper: one access line per HTTP request, and its request id.

    The id is the client's `X-Request-Id` when it sends one (so N-central's or a proxy's
    id can be followed into our log), else a fresh one; it is put in the scope's state for
    the handlers, which record it with the event, and sent back as `X-Request-Id`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        encoded_id = request_id.encode("latin-1")
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _set_header(message, b"x-request-id", encoded_id)
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            _log_access(scope, status, request_id, time.perf_counter() - started)


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _JSON.encode(line).decode()


class TextLines(logging.Formatter):
    """`time level logger message key=value ...`; values that could forge a line are escaped."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        pairs = "".join(f" {k}={_printable(v)}" for k, v in fields.items() if v is not None)
        line = f"{_time(record)} {record.levelname.lower()} {record.name} "
        line += _printable(record.getMessage()) + pairs
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


#: Libraries that log what requests carry below warning: httpx each callback URL,
#: aiosqlite each statement with its arguments (request bodies included).
_REVEALING = ("httpx", "httpcore", "aiosqlite", "transitions")

_access = logging.getLogger("psa_ledger.access")
_JSON = msgspec.json.Encoder(enc_hook=str)


def _log_access(scope: Scope, status: int, request_id: str, seconds: float) -> None:
    if not _access.isEnabledFor(logging.INFO):
        return
    state = scope.get("state", {})
    client = scope.get("client")
    method, path = scope.get("method", ""), scope.get("path", "")[:256]
    fields = {
        "request_id": request_id,
        "method": method,
        "route": scope.get("path_template") or None,
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "client": client[0] if client else None,
        "user": state.get("actor"),
    }
    _access.info("%s %s %d", method, path, status, extra={"fields": fields})


def _set_header(message: HTTPResponseStartEvent, name: bytes, value: bytes) -> None:
    """Set one header of a response start, in place of any the app set (raw: every request)."""
    headers = [(n, v) for n, v in message.get("headers", ()) if n.lower() != name]
    headers.append((name, value))
    message["headers"] = headers


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            sent = value.decode("latin-1")[:MAX_REQUEST_ID]
            if sent.strip():
                return sent
    return os.urandom(16).hex()  # a uuid4's randomness, without building a UUID on every request


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _printable(value: object) -> str:
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)

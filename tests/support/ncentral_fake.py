"""A fake N-central: a real HTTP server on a free port that records every callback.

It speaks both callback APIs (legacy PUT with Basic auth; REST authenticate + POST with
Bearer tokens), answers 200 unless told otherwise per ticket, and can end every REST
session at once, as N-central does when an access token expires.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LEGACY_PREFIX = "/dms/rest/custompsa/tickets/create/"
REST_TICKETS = "/api/custom-psa/tickets"
AUTHENTICATE = "/api/auth/authenticate"


@dataclass(frozen=True)
class Call:
    """One request as N-central saw it, and what it answered."""

    method: str
    path: str
    authorization: str | None
    content_type: str | None
    body: bytes
    at: float
    status: int

    def json(self) -> object:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering: longer than the client's timeout is a timeout.
    delay: float = 0.0
    body: bytes = b""


class FakeNcentral:
    def __init__(
        self,
        *,
        username: str = "nc-user",
        password: str = "nc-pass",
        access_lifetime: float | None = None,
        access_prefix: str = "access-",
    ) -> None:
        self.username = username
        self.password = password
        self.jwt = "user-api-jwt"
        #: Seconds an access token lives, written in its JWT `exp`; None: a bare token.
        self.access_lifetime = access_lifetime
        #: Access tokens handed out are this followed by a serial number.
        self.access_prefix = access_prefix
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._sessions: set[str] = set()
        self._issued = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @contextmanager
    def running(self) -> Iterator[FakeNcentral]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

    def script(self, ticket_id: str, *replies: Reply) -> None:
        """Answer the next callbacks for `ticket_id` with `replies`, then 200 again."""
        with self._lock:
            self._scripts[ticket_id] = list(replies)

    def expire_sessions(self) -> None:
        """Every access token handed out so far is refused from now on (401)."""
        with self._lock:
            self._sessions.clear()

    def calls(self, path: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if path is None or c.path == path]

    def callbacks_for(self, ticket_id: str) -> list[Call]:
        """The callbacks about one ticket, whichever API carried them."""
        return [c for c in self.calls() if _ticket_of(c) == ticket_id]

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        auth = headers.get("authorization")
        with self._lock:
            if method == "PUT" and path.startswith(LEGACY_PREFIX):
                if auth != basic_auth(self.username, self.password):
                    return Reply(401)
                return self._scripted(path.removeprefix(LEGACY_PREFIX))
            if method == "POST" and path == AUTHENTICATE:
                return self._authenticate(auth)
            if method == "POST" and path == REST_TICKETS:
                if (auth or "").removeprefix("Bearer ") not in self._sessions:
                    return Reply(401)
                return self._scripted(str(json.loads(body).get("psaCustomTicketId")))
        return Reply(404)

    def _scripted(self, ticket_id: str) -> Reply:
        script = self._scripts.get(ticket_id)
        return script.pop(0) if script else Reply(200)

    def _authenticate(self, auth: str | None) -> Reply:
        if auth != f"Bearer {self.jwt}":
            return Reply(401)
        access = f"{self.access_prefix}{next(self._issued)}"
        if self.access_lifetime is not None:
            access = _jwt(access, time.time() + self.access_lifetime)
        self._sessions.add(access)
        tokens = {"tokens": {"access": {"token": access}, "refresh": {"token": "refresh"}}}
        return Reply(200, body=json.dumps(tokens).encode())

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _jwt(subject: str, exp: float) -> str:
    """Shaped like N-central's tokens: header.claims.signature, base64url without padding."""
    claims = json.dumps({"sub": subject, "exp": exp}).encode()
    return ".".join(
        base64.urlsafe_b64encode(part).decode().rstrip("=")
        for part in (b'{"alg":"none"}', claims, b"signature")
    )


def _ticket_of(call: Call) -> str | None:
    if call.path.startswith(LEGACY_PREFIX):
        return call.path.removeprefix(LEGACY_PREFIX)
    if call.path == REST_TICKETS:
        return str(json.loads(call.body).get("psaCustomTicketId"))
    return None


def _handler_for(fake: FakeNcentral) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PUT(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test asserts on recorded calls, not on a log."""

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = fake._answer(self.command, self.path, headers, body)
            fake._record(
                Call(
                    self.command,
                    self.path,
                    headers.get("authorization"),
                    headers.get("content-type"),
                    body,
                    time.monotonic(),
                    reply.status,
                )
            )
            time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: exactly what a timeout test wants

    return Handler

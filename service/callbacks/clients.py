"""N-central's two ways of taking a ticket's identity back: the legacy endpoint and the REST API.

A client sends one callback and reports what came of it as a `Reply`; it never raises for
what the network or N-central did, because every outcome is something to record and judge.
Both share one `httpx.AsyncClient`, with explicit timeouts: N-central documents none, and a
callback that hangs would hold its lease for nothing.
"""

from __future__ import annotations

import asyncio
import base64
import time
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx
import msgspec

from service.digits import NotAWholeNumber, shown, whole_number
from service.settings import Settings

__all__ = ["Client", "Delivery", "LegacyClient", "Reply", "RestClient", "make_client"]

USER_AGENT = "psa-ledger/0.1"


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """What N-central needs to leave "pending creation": our number and where the ticket is."""

    ncentral_ticket_id: str
    external_ticket_id: str
    ticket_url: str


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """What one callback came to: N-central's status, or why there was none."""

    status: int | None = None
    error: str | None = None
    #: Seconds N-central asked us to wait (`Retry-After`), if it said.
    retry_after: float | None = None
    #: Nothing about this callback will change by trying again later.
    permanent: bool = False


class Client(Protocol):
    api: str

    async def send(self, delivery: Delivery) -> Reply: ...

    async def aclose(self) -> None: ...


def make_client(settings: Settings) -> Client:
    """The client for `settings.ncentral_api`, on a fresh shared connection pool."""
    assert settings.ncentral_url is not None
    timeout = settings.callback_timeout
    http = httpx.AsyncClient(
        base_url=settings.ncentral_url.rstrip("/"),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )
    if settings.ncentral_api == "rest":
        return RestClient(http, settings.ncentral_token or "")
    return LegacyClient(http, settings.ncentral_username or "", settings.ncentral_password or "")


class LegacyClient:
    """`PUT /dms/rest/custompsa/tickets/create/{id}` with Basic auth."""

    api = "legacy"

    def __init__(self, http: httpx.AsyncClient, username: str, password: str) -> None:
        self._http = http
        self._auth = httpx.BasicAuth(username, password)

    async def send(self, delivery: Delivery) -> Reply:
        async def put() -> httpx.Response:
            return await self._http.put(
                f"/dms/rest/custompsa/tickets/create/{delivery.ncentral_ticket_id}",
                content=_body(delivery),
                headers=_JSON,
                auth=self._auth,
            )

        return await _guarded(delivery, put)

    async def aclose(self) -> None:
        await self._http.aclose()


class RestClient:
    """`POST /api/custom-psa/tickets` with an access token obtained for the configured JWT.

    The access token is cached until shortly before it expires; a 401 drops it and the
    callback is sent once more with a new one, since N-central may end a session early.
    """

    api = "rest"

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self._http = http
        self._token = token
        self._access: str | None = None
        self._expires = 0.0
        # Callbacks sent side by side share one authentication instead of racing for several.
        self._authenticating = asyncio.Lock()

    async def send(self, delivery: Delivery) -> Reply:
        async def post() -> httpx.Response:
            access = await self._access_token()
            if isinstance(access, httpx.Response):
                return access
            response = await self._post(delivery, access)
            if response.status_code != 401:
                return response
            self._forget(access)
            access = await self._access_token()
            if isinstance(access, httpx.Response):
                return access
            return await self._post(delivery, access)

        return await _guarded(delivery, post)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, delivery: Delivery, access: str) -> httpx.Response:
        return await self._http.post(
            "/api/custom-psa/tickets",
            content=_body(delivery),
            headers={**_JSON, "Authorization": f"Bearer {access}"},
        )

    async def _access_token(self) -> str | httpx.Response:
        """A usable access token, or N-central's refusal to give one."""
        async with self._authenticating:
            if self._access is not None and time.monotonic() < self._expires:
                return self._access
            return await self._authenticate()

    async def _authenticate(self) -> str | httpx.Response:
        response = await self._http.post(
            "/api/auth/authenticate", headers={"Authorization": f"Bearer {self._token}"}
        )
        if not response.is_success:
            return response
        try:
            tokens = _decode_tokens(response.content).tokens
        except msgspec.DecodeError as exc:
            raise _Unusable(f"authenticate answered without an access token: {exc}") from None
        self._access = tokens.access.token
        self._expires = time.monotonic() + _lifetime(self._access)
        return self._access

    def _forget(self, access: str) -> None:
        if self._access == access:
            self._access = None


class _Token(msgspec.Struct):
    token: str


class _Tokens(msgspec.Struct):
    access: _Token
    refresh: _Token | None = None


class _Authenticated(msgspec.Struct):
    tokens: _Tokens


class _Unusable(Exception):
    """N-central answered 2xx with something we cannot use; worth another try later."""


class _Claims(msgspec.Struct):
    exp: float | None = None


_JSON = {"Content-Type": "application/json"}
_decode_tokens = msgspec.json.Decoder(_Authenticated).decode
_decode_claims = msgspec.json.Decoder(_Claims).decode
#: N-central documents about an hour; assume less when the token does not say.
_DEFAULT_LIFETIME = 50 * 60.0
_EXPIRY_MARGIN = 60.0


class _Body(msgspec.Struct, rename="camel"):
    ticket_url: str
    ticket_number: str
    psa_custom_ticket_id: int


def _body(delivery: Delivery) -> bytes:
    number = whole_number(delivery.ncentral_ticket_id)
    return msgspec.json.encode(_Body(delivery.ticket_url, delivery.external_ticket_id, number))


async def _guarded(delivery: Delivery, send: _Send) -> Reply:
    """Run one send and turn whatever happened into a `Reply`.

    N-central numbers its tickets in ASCII digits, and `psaCustomTicketId` must be that
    number: any other ID (`²`, or `١٢٣`, which `int()` reads as another ticket's 123) is
    never sent, and no later try can change that.
    """
    try:
        whole_number(delivery.ncentral_ticket_id)
    except NotAWholeNumber:
        error = (
            f"ncentralTicketId {shown(delivery.ncentral_ticket_id)} is not N-central's"
            " ticket number (ASCII digits); the callback was not sent"
        )
        return Reply(error=error, permanent=True)
    try:
        response = await send()
    except httpx.TimeoutException as exc:
        return Reply(error=f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Reply(error=f"{type(exc).__name__}: {exc}")
    except _Unusable as exc:
        return Reply(error=str(exc))
    return Reply(
        status=response.status_code, retry_after=_retry_after(response.headers.get("retry-after"))
    )


class _Send(Protocol):
    async def __call__(self) -> httpx.Response: ...


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` is either seconds (ASCII digits) or an HTTP date.

    Anything else is None, and the schedule alone decides the wait.
    """
    if not value:
        return None
    text = value.strip()
    try:
        return float(whole_number(text))
    except NotAWholeNumber:
        pass
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _lifetime(access: str) -> float:
    """Seconds the access token stays usable: its JWT `exp` if readable, less a margin."""
    try:
        claims = _decode_claims(base64.urlsafe_b64decode(_padded(access.split(".")[1])))
    except (IndexError, ValueError, msgspec.DecodeError):
        return _DEFAULT_LIFETIME
    if claims.exp is None:
        return _DEFAULT_LIFETIME
    return max(0.0, claims.exp - time.time() - _EXPIRY_MARGIN)


def _padded(segment: str) -> str:
    return segment + "=" * (-len(segment) % 4)

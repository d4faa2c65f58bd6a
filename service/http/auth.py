"""Basic credentials: who N-central is, who the operators are, and the guards that check.

N-central's credential may only post actions; the operator credential may only read. Each
guard compares in constant time so that a wrong guess learns nothing from the timing, and
counts wrong guesses per client address: past ten a minute, that address is answered 429
until the minute has passed, whatever it sends (a right guess included, or the 429 itself
would tell the guesser nothing and the guessing would go on).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
import sys
import tomllib

import msgspec
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope

from service.http.throttle import LoginThrottle
from service.settings import Settings, SettingsError
from service.storage import files

__all__ = [
    "Credential",
    "Credentials",
    "admitted_ncentral",
    "ncentral_guard",
    "operator_guard",
    "resolve_credentials",
]

REALM_HEADER = {"WWW-Authenticate": 'Basic realm="psa-ledger"'}

log = logging.getLogger("psa_ledger.auth")


class Credential(msgspec.Struct, frozen=True):
    username: str
    password: str

    def matches(self, username: str, password: str) -> bool:
        # Both comparisons always run: `and` would leak which half was wrong.
        same_user = hmac.compare_digest(username.encode(), self.username.encode())
        same_password = hmac.compare_digest(password.encode(), self.password.encode())
        return same_user & same_password


class Credentials(msgspec.Struct, frozen=True):
    ncentral: Credential
    operator: Credential


def resolve_credentials(settings: Settings, *, announce: bool = True) -> Credentials:
    """Credentials from settings; a missing password is generated once and kept 0600."""
    both_given = settings.password and settings.operator_password
    stored = {} if both_given else _read_stored(settings)
    generated: dict[str, Credential] = {}
    pairs = {}
    for role, username, password, default_user in (
        ("ncentral", settings.username, settings.password, "ncentral"),
        ("operator", settings.operator_username, settings.operator_password, "operator"),
    ):
        if password:
            pairs[role] = Credential(username or default_user, password)
        elif role in stored:
            pairs[role] = Credential(username or stored[role].username, stored[role].password)
        else:
            generated[role] = pairs[role] = Credential(
                username or default_user, secrets.token_urlsafe(18)
            )
    if generated:
        _store(settings, {**stored, **generated})
        if announce:
            _announce(settings, generated)
    return Credentials(**pairs)


async def ncentral_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    _check(connection, "ncentral", connection.app.state.credentials.ncentral)


async def operator_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    _check(connection, "operator", connection.app.state.credentials.operator)


def admitted_ncentral(scope: Scope) -> str | None:
    """N-central's user name if `scope` carries its credential from an address that may try
    now; None otherwise. Only looks: the guard refuses, counts and logs what this turns away.

    The same checks as the guard's, read straight from the ASGI scope, for the ticketing
    route's fast lane (service.http.fastlane).
    """
    state = scope["litestar_app"].state
    authorization, address = _sent(scope, state)
    if state.login_throttle.wait(address) is not None:
        return None
    credential: Credential = state.credentials.ncentral
    username, password = _basic(authorization)
    return credential.username if credential.matches(username, password) else None


def _check(connection: ASGIConnection, role: str, credential: Credential) -> None:
    state = connection.app.state
    authorization, address = _sent(connection.scope, state)
    wait = state.login_throttle.wait(address)
    if wait is not None:
        raise TooManyRequestsException(
            f"too many failed logins from {address}; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    username, password = _basic(authorization)
    if not credential.matches(username, password):
        if authorization is not None:
            _failed(state.login_throttle, role, username, address)
        raise NotAuthorizedException("valid Basic credentials are required", headers=REALM_HEADER)
    # Into the scope's state itself, as the fast lane does: `connection.state` builds a
    # `State` around it at each access (~3% of the event loop's time on a console page).
    connection.scope.setdefault("state", {})["actor"] = credential.username


def _sent(scope: Scope, state: State) -> tuple[str | None, str]:
    """The request's first Authorization header and the client's address, read from the
    raw scope: Litestar's header view decodes every header of every request (6 µs)."""
    authorization: str | None = None
    forwarded: list[str] = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == b"x-forwarded-for":
            forwarded.append(value.decode("latin-1"))
    client = scope.get("client")
    return authorization, state.client_address.of(client[0] if client else None, forwarded)


def _failed(throttle: LoginThrottle, role: str, username: str, address: str) -> None:
    """Count and log a wrong guess. The user name is the guesser's text: quoted, cut short."""
    throttle.failed(address)
    log.warning("failed %s login as %r from %s", role, username[:64], address)
    wait = throttle.wait(address)
    if wait is not None:
        log.warning(
            "%s failed %d logins within %g s: refused (429) for %d s",
            address,
            throttle.limit,
            throttle.window,
            wait,
        )


def _basic(authorization: str | None) -> tuple[str, str]:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    username, _, password = decoded.partition(":")
    return username, password


def _read_stored(settings: Settings) -> dict[str, Credential]:
    """The generated pairs; refused if others may read them, as ssh refuses an open key."""
    path = settings.credentials_file
    try:
        if files.open_to_others(path):
            raise SettingsError(
                f"{path} holds passwords but others may read it: run `chmod 600 {path}`"
                " (or delete it to generate new passwords)"
            )
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {role: msgspec.convert(pair, Credential) for role, pair in data.items()}


def _store(settings: Settings, pairs: dict[str, Credential]) -> None:
    lines = ["# Generated by psa-ledger. Readable by its owner only.\n"]
    for role, pair in pairs.items():
        user, password = _toml_string(pair.username), _toml_string(pair.password)
        lines.append(f"\n[{role}]\nusername = {user}\npassword = {password}\n")
    files.write_private(settings.credentials_file, "".join(lines))


def _toml_string(value: str) -> str:
    """A JSON string is a valid TOML basic string, escapes included."""
    return msgspec.json.encode(value).decode()


def _announce(settings: Settings, generated: dict[str, Credential]) -> None:
    """Where the passwords are, never the passwords: this line may end in a journal."""
    roles = ", ".join(f"{role} (user {pair.username})" for role, pair in generated.items())
    where = settings.credentials_file.resolve()
    print(f"psa-ledger: generated passwords for {roles}; read them in {where}", file=sys.stderr)

"""Settings: one Struct, filled from a TOML file, then the environment, then flags.

Every field is `PSA_LEDGER_<FIELD>` in the environment and `--<field>` on the command line,
except the secrets: `ps` shows a process's command line to every user, so a password or
token comes from the environment, the TOML file, or a file named by `PSA_LEDGER_<FIELD>_FILE`
(the Docker secrets and systemd credentials convention), never from a flag.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from service.clientaddress import Network, parse_networks

__all__ = ["ENV_PREFIX", "SECRETS", "Settings", "SettingsError", "load_settings"]

ENV_PREFIX = "PSA_LEDGER_"

#: Never flags; each may be given as `<name>_file` instead.
SECRETS = ("password", "operator_password", "ncentral_password", "ncentral_token")

#: `PSA_LEDGER_DB` values that name a PostgreSQL database rather than a SQLite file.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

#: Our own Basic passwords: at ten guesses a minute, 16 random characters are out of reach.
MIN_PASSWORD_LENGTH = 16


class SettingsError(Exception):
    """A setting that cannot be used; the message names it."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: A SQLite file, or a `postgresql://` URL (`service.storage.backend` tells them apart).
    db: str = "var/psa-ledger.db"
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    operator_username: str | None = None
    operator_password: str | None = None
    operator_password_file: Path | None = None
    create_mode: Literal["sync", "async"] = "sync"
    ncentral_url: str | None = None
    ncentral_username: str | None = None
    ncentral_password: str | None = None
    ncentral_password_file: Path | None = None
    ncentral_api: Literal["legacy", "rest"] = "legacy"
    ncentral_token: str | None = None
    ncentral_token_file: Path | None = None
    allow_insecure_ncentral: bool = False
    callback_schedule: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200)
    #: Seconds N-central may take to accept a connection or to answer one callback request.
    callback_timeout: float = 10.0
    #: How long the writer waits for a lock held by another process before answering 503.
    busy_timeout_ms: int = 5000
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: Connections served at once; one more is answered 503. Each may hold a 1 MiB body.
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 100
    #: Seconds a client may take to send a request's headers before 408 and a hang-up.
    header_timeout: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    #: Reverse proxies whose X-Forwarded-For names the client (comma-separated IPs or CIDRs).
    trusted_proxies: str | None = None
    log_format: Literal["text", "json"] = "text"
    #: Events between two checkpoints of the tickets, which time travel starts from.
    checkpoint_every: Annotated[int, msgspec.Meta(ge=1)] = 10_000

    @property
    def base_url(self) -> str:
        """Where technicians reach us: the base of every ticketUrl."""
        url = self.public_url or f"http://{self.host}:{self.port}"
        return url.rstrip("/")

    @property
    def on_postgres(self) -> bool:
        return str(self.db).startswith(POSTGRES_SCHEMES)

    @property
    def credentials_file(self) -> Path:
        """Generated passwords live beside the DB, readable by its owner only."""
        path = Path(self.db)
        return path.with_name(path.stem + ".credentials.toml")

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies or "")


#: What each setting means, for `psa-ledger serve --help`.
DESCRIPTIONS = {
    "db": "the event log: a SQLite file (created with its folder) or a postgresql:// URL",
    "host": "address to listen on",
    "port": "port to listen on",
    "public_url": "base of every ticketUrl (default http://HOST:PORT)",
    "username": "user name N-central sends (inbound Basic auth)",
    "password": "password N-central sends; generated and kept beside the DB when unset",
    "password_file": "file holding the password N-central sends (or PSA_LEDGER_PASSWORD)",
    "operator_username": "user name for ticket pages and /api",
    "operator_password": "operator password; generated and kept beside the DB when unset",
    "operator_password_file": "file with the operator password (or PSA_LEDGER_OPERATOR_PASSWORD)",
    "create_mode": "sync: CREATE answered with the identity; async: 202, then a callback",
    "ncentral_url": "base URL of N-central, for callbacks (async mode)",
    "ncentral_username": "N-central user for legacy callbacks",
    "ncentral_password": "password of that user",
    "ncentral_password_file": "file holding that user's password (or PSA_LEDGER_NCENTRAL_PASSWORD)",
    "ncentral_api": "legacy: PUT /dms/rest/custompsa/...; rest: N-central REST API",
    "ncentral_token": "N-central user-API JWT, for the rest API",
    "ncentral_token_file": "file holding the user-API JWT (or PSA_LEDGER_NCENTRAL_TOKEN)",
    "allow_insecure_ncentral": "true: allow an http:// NCENTRAL_URL that is not loopback",
    "callback_schedule": "comma-separated seconds to wait before each retry of a callback",
    "callback_timeout": "seconds N-central may take to connect or answer one callback",
    "busy_timeout_ms": "ms to wait for a lock held by another process before a 503",
    "log_level": "debug, info, warning or error",
    "max_connections": "connections served at once; beyond them, 503 until one closes",
    "header_timeout": "seconds a client may take to send its request headers (else 408)",
    "trusted_proxies": "comma-separated proxy IPs/CIDRs whose X-Forwarded-For is believed",
    "log_format": "text (for people) or json (one JSON object per line, for machines)",
    "checkpoint_every": "events between two checkpoints of the tickets (time travel starts there)",
}


def load_settings(
    *,
    config: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the TOML file, the environment and explicit overrides (flags), in that order."""
    values: dict[str, Any] = {}
    if config is not None:
        values |= _read_toml(config)
    values |= _from_environ(os.environ if environ is None else environ)
    values |= {k: v for k, v in (overrides or {}).items() if v is not None}
    _read_secret_files(values)
    if isinstance(values.get("callback_schedule"), str):
        values["callback_schedule"] = _schedule(values["callback_schedule"])
    try:
        settings = msgspec.convert(values, Settings, strict=False, dec_hook=_path)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(str(exc))) from None
    _check_passwords(settings)
    if settings.on_postgres:
        _check_shared_passwords(settings)
    _check_trusted_proxies(settings)
    if settings.ncentral_url:
        _check_ncentral_url(settings)
    if settings.create_mode == "async":
        _check_callbacks(settings)
    return settings


def field_names() -> tuple[str, ...]:
    return Settings.__struct_fields__


def describe(name: str) -> str:
    """One line of help for a setting: meaning, variable and default."""
    default = getattr(Settings(), name)
    if isinstance(default, tuple):
        default = ",".join(f"{d:g}" for d in default)
    shown = f"; default {default}" if default is not None else ""
    return f"{DESCRIPTIONS.get(name, name)} [{ENV_PREFIX}{name.upper()}{shown}]"


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    found = {}
    for name in Settings.__struct_fields__:
        value = environ.get(ENV_PREFIX + name.upper())
        if value not in (None, ""):
            found[name] = value
    return found


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from None
    table = data.get("psa-ledger", data)
    return {k.replace("-", "_"): v for k, v in table.items()}


def _schedule(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SettingsError(
            f"PSA_LEDGER_CALLBACK_SCHEDULE must be comma-separated seconds, got {text!r}"
        ) from None
    if not delays or min(delays) < 0 or not all(math.isfinite(d) for d in delays):
        raise SettingsError(
            "PSA_LEDGER_CALLBACK_SCHEDULE needs at least one delay, each finite and not negative"
        )
    return delays


def _path(kind: type, value: Any) -> Any:
    """msgspec leaves `Path` to us: flags and the environment hand over strings."""
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError


def _check_callbacks(settings: Settings) -> None:
    """Async mode cannot work without a way to call N-central back: say so at start-up."""
    needed = {"ncentral_url": settings.ncentral_url}
    if settings.ncentral_api == "rest":
        needed["ncentral_token"] = settings.ncentral_token
    else:
        needed["ncentral_username"] = settings.ncentral_username
        needed["ncentral_password"] = settings.ncentral_password
    missing = [f"{ENV_PREFIX}{name.upper()}" for name, value in needed.items() if not value]
    if missing:
        raise SettingsError(
            f"{', '.join(missing)} required when {ENV_PREFIX}CREATE_MODE=async"
            f" with {ENV_PREFIX}NCENTRAL_API={settings.ncentral_api}"
        )


def _explain(message: str) -> str:
    """msgspec says `$.port`; the user typed PSA_LEDGER_PORT or --port."""
    if "- at `$." in message:
        problem, _, where = message.partition(" - at `$.")
        name = where.rstrip("`").split("[")[0]
        return f"{ENV_PREFIX}{name.upper()} (--{name.replace('_', '-')}): {problem}"
    return message


def _variable(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _read_secret_files(values: dict[str, Any]) -> None:
    """Each `<secret>_file` that is set becomes the secret: the file's text, less its newline."""
    for name in SECRETS:
        source = values.get(f"{name}_file")
        if not isinstance(source, str | Path):
            continue  # unset, or of a type the conversion below names
        variable = _variable(name)
        if values.get(name):
            raise SettingsError(f"{variable} and {variable}_FILE are both set: keep one")
        try:
            secret = Path(source).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SettingsError(f"{variable}_FILE: cannot read {source}: {reason}") from None
        if not secret:
            raise SettingsError(f"{variable}_FILE: {source} is empty")
        values[name] = secret


def _check_passwords(settings: Settings) -> None:
    """Our own Basic passwords must resist guessing, and the two roles must stay apart."""
    for name in ("password", "operator_password"):
        value = getattr(settings, name)
        if value is not None and len(value) < MIN_PASSWORD_LENGTH:
            given = _variable(name) + ("_FILE" if getattr(settings, f"{name}_file") else "")
            raise SettingsError(
                f"{given} must be at least {MIN_PASSWORD_LENGTH} characters"
                f" (it has {len(value)}); leave it unset to have one generated"
            )
    if settings.password is not None and settings.password == settings.operator_password:
        raise SettingsError(
            f"{_variable('password')} and {_variable('operator_password')} are the same:"
            " N-central's password must not open the operators' pages, nor theirs N-central's"
        )


def _check_shared_passwords(settings: Settings) -> None:
    """Replicas on one PostgreSQL log must share their passwords: none can be generated."""
    missing = [
        _variable(name) for name in ("password", "operator_password") if not getattr(settings, name)
    ]
    if missing:
        raise SettingsError(
            f"{' and '.join(missing)} must be set with a PostgreSQL log: every replica"
            " must accept the same passwords, so none is generated beside a file"
        )


def _check_trusted_proxies(settings: Settings) -> None:
    try:
        settings.trusted_networks  # noqa: B018  (parsing is the check)
    except ValueError as exc:
        raise SettingsError(f"{_variable('trusted_proxies')}: {exc}") from None


def _check_ncentral_url(settings: Settings) -> None:
    """Callbacks carry N-central credentials: over plain HTTP only to this machine, or if told."""
    assert settings.ncentral_url is not None
    variable = _variable("ncentral_url")
    url = urlsplit(settings.ncentral_url)
    if url.username is not None or url.password is not None:
        raise SettingsError(
            f"{variable} must not hold credentials: give them as"
            f" {_variable('ncentral_username')} and {_variable('ncentral_password')}"
            f" (or {_variable('ncentral_token')})"
        )
    if url.scheme not in ("http", "https") or not url.hostname:
        raise SettingsError(f"{variable} must be an http:// or https:// URL with a host")
    insecure = url.scheme == "http" and not _loopback(url.hostname)
    if insecure and not settings.allow_insecure_ncentral:
        allow = _variable("allow_insecure_ncentral")
        raise SettingsError(
            f"{variable} is http:// to another machine, so callbacks would send N-central's"
            f" credentials in clear: use https://, or set {allow}=true"
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

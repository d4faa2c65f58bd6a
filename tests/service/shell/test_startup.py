"""Starting up as an MSP engineer would: defaults, generated credentials, settings."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from service.settings import SECRETS, Settings, SettingsError, load_settings
from tests.support.harness import clean_environment
from tests.support.live import free_port


def serve_in(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**clean_environment(), **(env or {})}
    env["PSA_LEDGER_PORT"] = "1"  # the flag below must win over the environment
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), *args],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/healthz", timeout=0.5)
            return process, url
        except httpx.TransportError:
            if process.poll() is not None:
                break
            subprocess.run(["sleep", "0.05"], check=True)
    process.kill()
    raise RuntimeError(process.stderr.read().decode())  # type: ignore[union-attr]


def stop(process: subprocess.Popen[bytes]) -> str:
    process.terminate()
    process.wait(timeout=15)
    return process.stderr.read().decode()  # type: ignore[union-attr]


def test_first_start_generates_credentials_once_and_keeps_them_private(tmp_path: Path) -> None:
    process, url = serve_in(tmp_path)
    first_output = stop(process)
    assert (tmp_path / "var" / "psa-ledger.db").exists()
    secrets_file = tmp_path / "var" / "psa-ledger.credentials.toml"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    text = secrets_file.read_text()
    nc_password, op_password = (part.split('"')[0] for part in text.split('password = "')[1:])
    assert f"read them in {secrets_file}" in first_output, "the journal learns where, not what"
    assert nc_password not in first_output and op_password not in first_output

    process, url = serve_in(tmp_path)
    try:
        body = {"action": "CREATE", "ncentralTicketId": "5", "title": "t", "details": "d"}
        ok = httpx.put(f"{url}/ncentral/tickets", json=body, auth=("ncentral", nc_password))
        assert ok.status_code == 200
    finally:
        second_output = stop(process)
    assert nc_password not in second_output, "a generated password is printed only once"


def test_a_first_start_on_postgresql_needs_the_passwords_then_creates_the_log_there(
    tmp_path: Path, postgres_url: str
) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", "1", "--db", postgres_url],
        cwd=tmp_path,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("Error: PSA_LEDGER_PASSWORD and PSA_LEDGER_OPERATOR_PASS")
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert _tables(postgres_url) == [], "refused before the database was touched"

    passwords = {"PSA_LEDGER_PASSWORD": "n" * 16, "PSA_LEDGER_OPERATOR_PASSWORD": "o" * 16}
    process, url = serve_in(tmp_path, "--db", postgres_url, env=passwords)
    try:
        body = {"action": "CREATE", "ncentralTicketId": "5", "title": "t", "details": "d"}
        ok = httpx.put(f"{url}/ncentral/tickets", json=body, auth=("ncentral", "n" * 16))
        assert ok.status_code == 200
    finally:
        stop(process)
    assert {"events", "tickets", "callbacks"} <= set(_tables(postgres_url))
    assert not (tmp_path / "var").exists(), "nothing is written beside it: no file, no secrets"


def _tables(url: str) -> list[str]:
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return [name for (name,) in rows]


def test_environment_then_flags_then_validation() -> None:
    env = {"PSA_LEDGER_PORT": "9000", "PSA_LEDGER_CALLBACK_SCHEDULE": "1,2,3"}
    settings = load_settings(environ=env, overrides={"host": "0.0.0.0"})
    assert (settings.port, settings.host, settings.callback_schedule) == (
        9000,
        "0.0.0.0",
        (1, 2, 3),
    )
    assert settings.base_url == "http://0.0.0.0:9000"
    assert load_settings(environ=env, overrides={"port": "9100"}).port == 9100


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PSA_LEDGER_PORT": "eighty"}, "PSA_LEDGER_PORT"),
        ({"PSA_LEDGER_CREATE_MODE": "later"}, "PSA_LEDGER_CREATE_MODE"),
        ({"PSA_LEDGER_CREATE_MODE": "async"}, "PSA_LEDGER_NCENTRAL_URL"),
        ({"PSA_LEDGER_CALLBACK_SCHEDULE": "5,soon"}, "PSA_LEDGER_CALLBACK_SCHEDULE"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=env)


def test_toml_config_is_read_and_environment_beats_it(tmp_path: Path) -> None:
    config = tmp_path / "psa.toml"
    config.write_text('[psa-ledger]\nport = 9200\npublic-url = "https://psa.example.net"\n')
    settings = load_settings(config=config, environ={"PSA_LEDGER_PORT": "9300"})
    assert (settings.port, settings.base_url) == (9300, "https://psa.example.net")
    assert Settings().db == "var/psa-ledger.db"


def test_a_bad_setting_stops_serve_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", "eighty"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "PSA_LEDGER_PORT (--port)" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_help_explains_every_setting() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for name in Settings.__struct_fields__:
        assert f"PSA_LEDGER_{name.upper()}" in " ".join(shown.split())
        if name in SECRETS:
            assert f"--{name.replace('_', '-')} " not in shown, "ps shows flags to every user"
            assert f"--{name.replace('_', '-')}-file" in shown
        else:
            assert f"--{name.replace('_', '-')}" in shown
    assert "default 8080" in " ".join(shown.split())

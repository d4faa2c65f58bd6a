"""Secrets never on a command line: from the environment, the TOML file or a `…_FILE`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from service.settings import SettingsError, load_settings
from tests.support.harness import clean_environment
from tests.support.live import Log, Service, wait_for
from tests.support.ncentral_fake import REST_TICKETS, FakeNcentral, basic_auth

SECRET_FLAGS = ["--password", "--operator-password", "--ncentral-password", "--ncentral-token"]


def serve(*args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess:
    """`psa-ledger serve` expected to refuse: it must exit by itself, quickly."""
    clean = clean_environment()
    return subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", "1", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


def secret_file(folder: Path, name: str, secret: str) -> str:
    """As Docker and systemd write them: the secret and a newline, readable by the owner."""
    path = folder / name
    path.write_text(secret + "\n")
    path.chmod(0o400)
    return str(path)


@pytest.mark.parametrize("flag", SECRET_FLAGS)
def test_a_secret_given_as_a_flag_is_refused_with_where_to_put_it(
    flag: str, tmp_path: Path
) -> None:
    refused = serve(flag, "correct-horse-battery-staple", cwd=tmp_path)
    assert refused.returncode == 2
    variable = "PSA_LEDGER_" + flag.removeprefix("--").replace("-", "_").upper()
    shown = " ".join(refused.stderr.split())
    assert f"set {variable}, or {variable}_FILE naming a file that holds it" in shown
    assert "correct-horse-battery-staple" not in refused.stderr
    assert not (tmp_path / "var").exists(), "refused before anything was created"


def test_our_passwords_and_the_legacy_callbacks_come_from_files(
    server_factory: Callable[..., Service], fake: FakeNcentral, log_db: Path | str, tmp_path: Path
) -> None:
    """On PostgreSQL nothing is generated, so a start there proves the files were read."""
    inbound, operator = "inbound-from-a-file-0001", "operator-from-a-file-0001"
    service = server_factory(
        log_db,
        log_dir=tmp_path,
        password="",  # the harness's environment passwords, unset: only the files count
        operator_password="",
        password_file=secret_file(tmp_path, "inbound", inbound),
        operator_password_file=secret_file(tmp_path, "operator", operator),
        create_mode="async",
        ncentral_url=fake.url,
        ncentral_username=fake.username,
        ncentral_password_file=secret_file(tmp_path, "ncentral", fake.password),
    ).start()
    create = {"action": "CREATE", "ncentralTicketId": "8101", "title": "t", "details": "d"}
    answer = httpx.put(f"{service.url}/ncentral/tickets", json=create, auth=("ncentral", inbound))
    assert answer.status_code == 202
    assert httpx.get(f"{service.url}/api/tickets", auth=("operator", operator)).status_code == 200
    wait_for(lambda: Log(service.db).state("8101") == "open", what="the callback")
    assert fake.callbacks_for("8101")[0].authorization == basic_auth(fake.username, fake.password)
    assert not list(tmp_path.glob("*.credentials.toml")), "nothing was generated"


def test_the_rest_token_comes_from_a_file(
    server_factory: Callable[..., Service], fake: FakeNcentral, tmp_path: Path
) -> None:
    service = server_factory(
        tmp_path / "log.db",
        create_mode="async",
        ncentral_api="rest",
        ncentral_url=fake.url,
        ncentral_token_file=secret_file(tmp_path, "jwt", fake.jwt),
    ).start()
    assert service.ticket("CREATE", "8102").status_code == 202
    wait_for(lambda: Log(service.db).state("8102") == "open", what="the callback")
    assert [c.path for c in fake.callbacks_for("8102")] == [REST_TICKETS]


def test_a_missing_secret_file_stops_serve_naming_the_variable(tmp_path: Path) -> None:
    refused = serve(env={"PSA_LEDGER_PASSWORD_FILE": str(tmp_path / "absent")}, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"Error: PSA_LEDGER_PASSWORD_FILE: cannot read {tmp_path / 'absent'}:"
        " No such file or directory\n"
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"PSA_LEDGER_PASSWORD": "x" * 16, "PSA_LEDGER_PASSWORD_FILE": "/dev/null"},
            "PSA_LEDGER_PASSWORD and PSA_LEDGER_PASSWORD_FILE are both set",
        ),
        ({"PSA_LEDGER_NCENTRAL_TOKEN_FILE": "/dev/null"}, "PSA_LEDGER_NCENTRAL_TOKEN_FILE: "),
    ],
)
def test_a_secret_set_twice_or_empty_is_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=environ)


def test_a_short_password_in_a_file_is_refused_naming_the_file_variable(tmp_path: Path) -> None:
    short = secret_file(tmp_path, "inbound", "too-short")
    with pytest.raises(SettingsError, match=r"^PSA_LEDGER_PASSWORD_FILE must be at least 16"):
        load_settings(environ={"PSA_LEDGER_PASSWORD_FILE": short})


def test_secrets_in_the_toml_file_and_files_named_there(tmp_path: Path) -> None:
    config = tmp_path / "psa.toml"
    operator = secret_file(tmp_path, "operator", "operator-from-a-file-0002")
    config.write_text(
        f'[psa-ledger]\npassword = "inbound-in-the-toml-1"\noperator-password-file = "{operator}"\n'
    )
    settings = load_settings(config=config, environ={})
    assert settings.password == "inbound-in-the-toml-1"
    assert settings.operator_password == "operator-from-a-file-0002"


ASYNC = {"PSA_LEDGER_CREATE_MODE": "async", "PSA_LEDGER_NCENTRAL_USERNAME": "psa"}


def test_plain_http_to_another_machine_is_refused_unless_allowed(
    server_factory: Callable[..., Service], tmp_path: Path
) -> None:
    env = {**ASYNC, "PSA_LEDGER_NCENTRAL_URL": "http://ncentral.example.com"}
    refused = serve(env={**env, "PSA_LEDGER_NCENTRAL_PASSWORD": "nc-secret"}, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.startswith("Error: PSA_LEDGER_NCENTRAL_URL is http:// to another")
    assert "set PSA_LEDGER_ALLOW_INSECURE_NCENTRAL=true" in refused.stderr
    assert refused.stderr.count("\n") == 1

    allowed = server_factory(
        tmp_path / "log.db",
        create_mode="async",
        ncentral_url="http://192.0.2.10",  # nobody answers there; starting is what counts
        ncentral_username="psa",
        ncentral_password="nc-secret",
        allow_insecure_ncentral="true",
    )
    assert allowed.start().running


def test_credentials_inside_the_ncentral_url_are_refused_without_repeating_them(
    tmp_path: Path,
) -> None:
    url = "https://psa:hunter2-in-the-url@ncentral.example.com"
    refused = serve(env={**ASYNC, "PSA_LEDGER_NCENTRAL_URL": url}, cwd=tmp_path)
    assert refused.returncode == 2
    assert "PSA_LEDGER_NCENTRAL_URL must not hold credentials" in refused.stderr
    assert "hunter2" not in refused.stderr


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8443", "http://localhost/", "http://[::1]:80", "https://nc.example.com"],
)
def test_loopback_or_https_needs_no_permission(url: str) -> None:
    environ = {**ASYNC, "PSA_LEDGER_NCENTRAL_URL": url, "PSA_LEDGER_NCENTRAL_PASSWORD": "p"}
    assert load_settings(environ=environ).ncentral_url == url

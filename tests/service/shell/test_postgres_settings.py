"""PSA_LEDGER_DB as a URL: the backend it picks, and the passwords replicas must share."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import SettingsError, load_settings
from service.storage.backend import SqliteBackend, backend_for
from service.storage.postgres.backend import PostgresBackend

SECRETS = {
    "PSA_LEDGER_PASSWORD": "n" * 16,
    "PSA_LEDGER_OPERATOR_PASSWORD": "o" * 16,
}


@pytest.mark.parametrize(
    ("db", "kind"),
    [
        ("var/psa-ledger.db", SqliteBackend),
        ("postgresql://psa@db.example/psa", PostgresBackend),
        ("postgres://psa@db.example/psa", PostgresBackend),
        ("postgresql.db", SqliteBackend),
    ],
)
def test_the_scheme_picks_the_backend(db: str, kind: type) -> None:
    assert isinstance(backend_for(db), kind)
    assert isinstance(backend_for(Path("x.db")), SqliteBackend)


def test_a_url_keeps_its_slashes_and_shows_no_password() -> None:
    settings = load_settings(environ={"PSA_LEDGER_DB": "postgresql://psa:s3cret@db/psa", **SECRETS})
    assert settings.db == "postgresql://psa:s3cret@db/psa"
    assert "s3cret" not in backend_for(settings.db).display


def test_on_postgresql_no_password_is_generated() -> None:
    with pytest.raises(SettingsError, match="PSA_LEDGER_OPERATOR_PASSWORD must be set"):
        load_settings(
            environ={"PSA_LEDGER_DB": "postgresql://db/psa", "PSA_LEDGER_PASSWORD": "n" * 16}
        )

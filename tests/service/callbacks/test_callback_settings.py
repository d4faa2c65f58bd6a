"""Settings a callback depends on, read the way an operator writes them."""

import pytest

from service.settings import SettingsError, load_settings


def test_schedule_takes_fractional_seconds_and_db_takes_a_path() -> None:
    settings = load_settings(
        environ={"PSA_LEDGER_CALLBACK_SCHEDULE": "0.2, 1.5,30", "PSA_LEDGER_DB": "var/x.db"}
    )
    assert settings.callback_schedule == (0.2, 1.5, 30.0)
    assert settings.db == "var/x.db"


@pytest.mark.parametrize("text", [" , ", "1,-2", "1,nan", "soon"])
def test_unusable_schedules_are_refused_by_name(text: str) -> None:
    with pytest.raises(SettingsError, match="PSA_LEDGER_CALLBACK_SCHEDULE"):
        load_settings(environ={"PSA_LEDGER_CALLBACK_SCHEDULE": text}, overrides={})


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({}, "PSA_LEDGER_NCENTRAL_URL"),
        ({"PSA_LEDGER_NCENTRAL_URL": "https://nc"}, "PSA_LEDGER_NCENTRAL_PASSWORD"),
        (
            {"PSA_LEDGER_NCENTRAL_URL": "https://nc", "PSA_LEDGER_NCENTRAL_API": "rest"},
            "PSA_LEDGER_NCENTRAL_TOKEN",
        ),
    ],
)
def test_async_mode_names_what_a_callback_would_lack(environ: dict[str, str], missing: str) -> None:
    with pytest.raises(SettingsError, match=missing):
        load_settings(environ={"PSA_LEDGER_CREATE_MODE": "async", **environ})

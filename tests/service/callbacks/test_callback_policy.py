"""What a callback's answer leads to, and how long to wait: the rules without the network."""

import base64
import json
import time
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.callbacks.clients import Reply, _lifetime, _retry_after
from service.callbacks.worker import Verdict, judge, next_delay


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        (Reply(status=200), Verdict.DELIVERED),
        (Reply(status=204), Verdict.DELIVERED),
        (Reply(error="ConnectError: refused"), Verdict.RETRY),
        (Reply(status=408), Verdict.RETRY),
        (Reply(status=429), Verdict.RETRY),
        (Reply(status=500), Verdict.RETRY),
        (Reply(status=503), Verdict.RETRY),
        (Reply(status=400), Verdict.DEAD),
        (Reply(status=401), Verdict.DEAD),
        (Reply(status=404), Verdict.DEAD),
        (Reply(status=302), Verdict.DEAD),
        (Reply(error="not an integer", permanent=True), Verdict.DEAD),
    ],
)
def test_answers_are_judged_as_the_contract_says(reply: Reply, verdict: Verdict) -> None:
    assert judge(reply) is verdict


def test_delays_follow_the_schedule_with_a_little_jitter_then_run_out() -> None:
    schedule = (5.0, 30.0)
    first, second = next_delay(schedule, 1, None), next_delay(schedule, 2, None)
    assert first is not None and 5.0 <= first <= 5.5
    assert second is not None and 30.0 <= second <= 33.0
    assert next_delay(schedule, 3, None) is None


def test_retry_after_is_honoured_when_longer_and_capped_at_a_day() -> None:
    assert 120.0 <= (next_delay((5.0,), 1, 120.0) or 0) <= 132.0
    assert 5.0 <= (next_delay((5.0,), 1, 1.0) or 0) <= 5.5
    assert (next_delay((5.0,), 1, 10**9) or 0) <= 24 * 3600 * 1.1


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert _retry_after("7") == 7.0
    assert 50 <= (_retry_after(formatdate(time.time() + 60, usegmt=True)) or 0) <= 60
    assert _retry_after("soon") is None
    assert _retry_after(None) is None


@pytest.mark.parametrize(
    "junk",
    ["²", "\N{ARABIC-INDIC DIGIT THREE}\N{ARABIC-INDIC DIGIT ZERO}", "9" * 5000, "-5", "1.5"],
)
def test_retry_after_that_is_not_ascii_seconds_is_ignored(junk: str) -> None:
    assert _retry_after(junk) is None


@given(st.text(max_size=60))
def test_any_retry_after_is_a_wait_or_none_and_never_an_error(text: str) -> None:
    wait = _retry_after(text)
    assert wait is None or 0.0 <= wait < float("inf")


def test_an_access_token_is_kept_until_shortly_before_its_expiry() -> None:
    claims = base64.urlsafe_b64encode(json.dumps({"exp": time.time() + 3600}).encode())
    token = f"e30.{claims.decode().rstrip('=')}.sig"
    assert 3500 < _lifetime(token) <= 3540
    assert _lifetime("opaque-token") == 50 * 60

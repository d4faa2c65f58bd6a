"""What a timeline line shows of a payload, and the links it makes: the cheap paths
(a small payload shown without the walk that cuts, an id put in a path unquoted) show
exactly what the general ones show."""

from __future__ import annotations

from urllib.parse import quote

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from service.http.entries import _DEEPEST, _MOST, SHORT, _preview, _shortened
from service.http.templating import in_path

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=60) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=80,
)


def _walked(payload: str) -> tuple[str, bool]:
    """The preview as the walk makes it, every payload walked."""
    short, was_cut = _shortened(msgspec.json.decode(payload), 0)
    return msgspec.json.format(msgspec.json.encode(short), indent=2).decode(), was_cut


@given(_JSON)
def test_any_payload_is_shown_as_the_walk_shows_it(value: object) -> None:
    payload = msgspec.json.encode(value).decode()
    shown, was_cut = _walked(payload)
    assert _preview(payload) == (shown, was_cut) or len(shown) > 3_000


def test_small_payloads_that_need_cutting_are_still_cut() -> None:
    deep = "[" * (_DEEPEST + 1) + "]" * (_DEEPEST + 1)
    many = "[" + ",".join("0" * (_MOST + 1)) + "]"
    long_string = msgspec.json.encode("x" * (SHORT + 1)).decode()
    long_key = msgspec.json.encode({"k" * (SHORT + 1): 0}).decode()
    for payload in (deep, many, long_string, long_key):
        preview, was_cut = _preview(payload)
        assert was_cut and (preview, was_cut) == _walked(payload)
    assert _preview("[" * _DEEPEST + "]" * _DEEPEST)[1] is False


def test_payloads_at_every_limit_are_shown_whole() -> None:
    at_limits = (
        msgspec.json.encode("x" * SHORT).decode(),
        "[" + ",".join("0" * _MOST) + "]",
        "[" * _DEEPEST + "]" * _DEEPEST,
    )
    for payload in at_limits:
        assert _preview(payload) == _walked(payload)
        assert _preview(payload)[1] is False


@given(st.text())
def test_ids_go_into_paths_as_quote_puts_them(text: str) -> None:
    assert in_path(text) == quote(text)

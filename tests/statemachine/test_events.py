"""Parsing N-central's body: what is accepted and how refusals name the field."""

import time

import msgspec
import pytest

from statemachine.events import (
    MAX_DEPTH,
    Event,
    InvalidRequest,
    admit_request,
    parse_request,
    ticket_id_of,
)
from statemachine.projection import Projection


def test_action_is_case_insensitive_and_close_means_resolve() -> None:
    assert parse_request(b'{"action":"close","ncentralTicketId":"1"}').action == "RESOLVE"
    assert parse_request(b'{"action":"Update","ncentralTicketId":"1"}').action == "UPDATE"


def test_unknown_keys_are_tolerated() -> None:
    parsed = parse_request(b'{"action":"UPDATE","ncentralTicketId":"1","whatever":[1]}')
    assert parsed.ncentral_ticket_id == "1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"ncentralTicketId":"1"}', "action"),
        (b'{"action":"UPDATE"}', "ncentralTicketId"),
        (b'{"action":"UPDATE","ncentralTicketId":7}', "ncentralTicketId"),
        (b'{"action":"UPDATE","ncentralTicketId":""}', "ncentralTicketId"),
        (b'{"action":"NOPE","ncentralTicketId":"1"}', "action"),
        (b'{"action":"CREATE","ncentralTicketId":"1","details":"d"}', "title"),
        (b'{"action":"CREATE","ncentralTicketId":"1","title":"t"}', "details"),
        (b'{"action":"UPDATE","ncentralTicketId":"1","customTags":{"a":1}}', "customTags"),
    ],
)
def test_invalid_requests_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(body)
    assert caught.value.field == field
    assert not caught.value.malformed


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"nope"])
def test_non_json_is_malformed(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(body)
    assert caught.value.malformed


def create_with(extra: bytes) -> bytes:
    return (
        b'{"action":"CREATE","ncentralTicketId":"1","title":"t","details":"d","x":' + extra + b"}"
    )


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 2000, 10_000, 200_000])
def test_nesting_is_refused_past_the_bound_and_never_raises_anything_else(depth: int) -> None:
    body = create_with(b"[" * depth + b"]" * depth)
    if depth + 1 <= MAX_DEPTH:  # the top-level object is a level too
        assert admit_request(body).ncentral_ticket_id == "1"
        return
    with pytest.raises(InvalidRequest) as caught:
        admit_request(body)
    assert caught.value.malformed
    assert f"deeper than {MAX_DEPTH}" in caught.value.detail


@pytest.mark.parametrize(
    "text", [b'"' + b"[" * 2000 + b'"', b'"\\"' + b"{" * 2000 + b'"', b'"\\\\' + b"[" * 600 + b'"']
)
def test_brackets_inside_strings_do_not_nest(text: bytes) -> None:
    assert admit_request(create_with(text)).ncentral_ticket_id == "1"


def test_an_unterminated_string_full_of_quotes_is_scanned_in_linear_time() -> None:
    body = b'["' + b'\\"' * 400_000 + b"[" * 600
    started = time.perf_counter()
    with pytest.raises(InvalidRequest):
        admit_request(body)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        (create_with(b'"\xff"'), b"\xff"),
        (b'{"action":"CREATE","ncentralTicketId":"1","title":"\xed\xa0\x80"}', b"\xed"),
    ],
)
def test_invalid_utf8_anywhere_is_malformed_and_says_where(body: bytes, bad: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        admit_request(body)
    assert caught.value.malformed
    assert f"not UTF-8: byte 0x{bad[0]:02x} at offset {body.index(bad)}" in caught.value.detail


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (create_with(b"9" * 5000), "x"),
        (create_with(b"-1e400"), "x"),
        (b'{"action":"CREATE","ncentralTicketId":"1","title":1e999,"details":"d"}', "title"),
        (b"[1e999]", None),
    ],
)
def test_numbers_out_of_range_are_ill_typed_and_named(body: bytes, field: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        admit_request(body)
    assert (caught.value.field, caught.value.malformed) == (field, False)


@pytest.mark.parametrize(
    "ticket_id",
    ["\u0661\u0662", "\u00b2", "\uff11", "1\x00", "007", "0x1", " 1", "1 ", "-1", "1.0"],
)
def test_ticket_ids_are_ascii_digits_as_n_central_writes_them(ticket_id: str) -> None:
    body = msgspec.json.encode({"action": "UPDATE", "ncentralTicketId": ticket_id})
    with pytest.raises(InvalidRequest) as caught:
        admit_request(body)
    assert caught.value.field == "ncentralTicketId"
    assert parse_request(body).ncentral_ticket_id == ticket_id, "replay still reads old logs"


@pytest.mark.parametrize("ticket_id", ["0", "7", "2147483647", "TEST_NC_TICKET_ID_7", "9" * 128])
def test_n_central_ticket_ids_are_admitted(ticket_id: str) -> None:
    body = msgspec.json.encode({"action": "UPDATE", "ncentralTicketId": ticket_id})
    assert admit_request(body).ncentral_ticket_id == ticket_id


@pytest.mark.parametrize(
    ("body", "ticket_id"),
    [
        (b'{"ncentralTicketId":"12","title":"\xff"}', "12"),
        (b'{"ncentralTicketId":"12","x":' + b"9" * 5000 + b"}", "12"),
        (b'{"ncentralTicketId":"1\xff"}', None),
        (b'{"ncentralTicketId":"12","x":' + b"[" * 5000 + b"]" * 5000 + b"}", None),
    ],
)
def test_ticket_id_of_finds_the_ticket_past_other_faults_and_never_raises(
    body: bytes, ticket_id: str | None
) -> None:
    assert ticket_id_of(body) == ticket_id


def test_a_request_accepted_before_these_checks_replays_as_it_was() -> None:
    """Replay applies `parse_request`, not `admit_request`: logs written before still verify."""
    payload = create_with(b"[" * 700 + b"]" * 700)[:-1] + b',"y":' + b"9" * 4400 + b"}"
    payload = payload.replace(b'"ncentralTicketId":"1"', b'"ncentralTicketId":"007"')
    with pytest.raises(InvalidRequest):
        admit_request(payload)
    event = Event(
        position=1,
        ticket_id="007",
        stream_version=1,
        action="CREATE",
        outcome="accepted",
        state_before="new",
        state_after="pending",
        recorded_at="2026-01-01T00:00:00.000000Z",
        request_id="r1",
        actor="ncentral",
        payload=payload.decode(),
    )
    assert Projection().apply(event) == []
